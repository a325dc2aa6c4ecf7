/*
|--------------------------------------------------------------------------
| Distributed runs: what differs between the run kinds
|--------------------------------------------------------------------------
|
| The adapter DistributedRuns drives a chunk, a plan and a settle through:
| the run kind's store, its engine kind and pacing, how a pass is cut into
| chunks (rotation: per stale version; re-encrypt: the source KEK's ids)
| and what a leftover says. One adapter per kind, no I/O of its own beyond
| the stores and row counts it is given.
|
*/
import { inject } from '@adonisjs/core'
import {
  percentileBounds,
  rangesFrom,
  type Chunk,
  type ChunkRange,
  type ChunkRunKind,
} from '#services/chunk_store'
import { rowsPerVersionOf } from '#services/entry_counts'
import type { EnginePacing, EngineRun, RunKind, RunStore } from '#services/run_engine'
import { ReencryptStore, type ReencryptRun } from '#services/reencrypt_store'
import { RotationStore, type RotationRun } from '#services/rotation_store'
import { RowReencrypter } from '#services/row_reencrypter'
import { StaleRowRewrapper } from '#services/stale_row_rewrapper'

/** A run row as the distributed runs read it. */
export type AnyRun = EngineRun & { cancelRequested: boolean; options: Record<string, unknown> }

/** What differs between the kinds of a distributed run. */
export interface DistributedKind {
  label: string
  store: Pick<
    RunStore<AnyRun, unknown, unknown>,
    'find' | 'update' | 'countRemaining' | 'doneOf'
  > & { requestCancel(id: string): Promise<boolean> }
  /** Step A done (rotation: the target version is known). */
  ready(run: AnyRun): boolean
  kind(run: AnyRun): Promise<RunKind<AnyRun, unknown, unknown>>
  pacing(run: AnyRun): EnginePacing
  /** The chunks of a pass: id ranges (per stale version for rotation). */
  ranges(run: AnyRun, chunkRows: number): Promise<ChunkRange[]>
  /** A chunk's scan range: rotation stays on the chunk's version. */
  scanVersion(chunk: Chunk): number | undefined
  leftoverMessage(run: AnyRun, remaining: number): string
}

/**
 * The adapters of the two run kinds a distributed run can be.
 */
@inject()
export class DistributedKinds {
  constructor(
    private rotations: RotationStore,
    private reencrypts: ReencryptStore,
    private rewrapper: StaleRowRewrapper,
    private reencrypter: RowReencrypter
  ) {}

  /** The adapter of `kind`. */
  of(kind: ChunkRunKind): DistributedKind {
    if (kind === 'rotation') {
      return {
        label: 'rotation',
        store: this.rotations as unknown as DistributedKind['store'],
        ready: (run) => (run as unknown as RotationRun).targetVersion !== null,
        kind: async (run) =>
          (await this.rewrapper.kind(run as unknown as RotationRun)) as unknown as RunKind<
            AnyRun,
            unknown,
            unknown
          >,
        pacing: (run) => this.rewrapper.pacing(run as unknown as RotationRun, {}),
        ranges: async (run, chunkRows) => {
          const r = run as unknown as RotationRun
          const ranges: ChunkRange[] = []
          for (const { version, rows } of await rowsPerVersionOf(r.kekName, r.targetVersion!)) {
            const where = 'kek_name = ? AND kek_version = ?'
            const bounds = await percentileBounds(where, [r.kekName, version], rows, chunkRows)
            ranges.push(...rangesFrom(version, bounds))
          }
          return ranges
        },
        scanVersion: (chunk) => chunk.staleVersion,
        leftoverMessage: (run, remaining) =>
          `${remaining} rows still below version ${(run as unknown as RotationRun).targetVersion}; see key_rotation_failures`,
      }
    }
    return {
      label: 're-encrypt',
      store: this.reencrypts as unknown as DistributedKind['store'],
      ready: () => true,
      kind: async (run) =>
        (await this.reencrypter.kind(run as unknown as ReencryptRun)) as unknown as RunKind<
          AnyRun,
          unknown,
          unknown
        >,
      pacing: (run) => this.reencrypter.pacing(run as unknown as ReencryptRun, {}),
      ranges: async (run, chunkRows) => {
        const from = (run as unknown as ReencryptRun).fromKek
        const rows = await this.reencrypts.countRemaining({ fromKek: from })
        return rangesFrom(0, await percentileBounds('kek_name = ?', [from], rows, chunkRows))
      },
      scanVersion: () => undefined,
      leftoverMessage: (run, remaining) =>
        `${remaining} rows still under "${(run as unknown as ReencryptRun).fromKek}"; see reencrypt_failures`,
    }
  }
}
