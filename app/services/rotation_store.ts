/*
|--------------------------------------------------------------------------
| Rotation store
|--------------------------------------------------------------------------
|
| The rotation kind's store for the run engine (RunStore): the
| `key_rotations` run rows (their CRUD is RunRowStore's, shared with the
| re-encrypt kind), the batch source (a keyset scan per stale version)
| and the fenced batch commit — one statement: compare-and-swap of every
| rewrapped row, the failures recorded, the run's cursor, counters and
| heartbeat moved, all atomic, so a crash at any line leaves either the
| whole batch or none of it.
|
| Over 300 lines, kept whole: most of it is SQL text, and the scan's and
| commit's steps stay methods of the one store the bench and tests
| subclass (readBatch, countStale, commitBatch).
|
*/
import db from '@adonisjs/lucid/services/db'
import type { KmsDriver } from '#kms/contract'
import { fenceSql } from '#services/chunk_fence'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import type {
  BatchOutcome,
  CancelledBy,
  CommitFence,
  IdRange,
  PreparedBatch,
  RunCursor,
  RunStore,
  SourceBatch,
} from '#services/run_engine'
import { isChunkFence } from '#services/run_engine'
import {
  RunRowStore,
  type BatchCommit,
  type RunAuthorize,
  type RunRowFields,
  type RunTable,
} from '#services/run_row_store'
import { pgArray, updateRunRow, UNFINISHED_STATUSES } from '#services/run_rows'

export { pgArray, updateRunRow, UNFINISHED_STATUSES }
export type { BatchCommit, CancelledBy }

/** A run row. */
export interface RotationRun extends RunRowFields {
  kekName: string
  baseVersion: number
  targetVersion: number | null
  rotateKek: boolean
  rewrapped: number
  cursorVersion: number
  trigger: 'cli' | 'api' | 'scheduler'
  requestedBy: string | null
}

/** A stale row read by the scan. */
export interface StaleRow {
  id: string
  wrappedDek: string
}

/** A rotation batch's KMS answers, one per row (rewrapped, or refused with a code). */
export type RewrapResults = Awaited<ReturnType<KmsDriver['rewrap']>>

function toRun(row: Record<string, any>): RotationRun {
  return {
    id: String(row.id),
    kekName: row.kek_name,
    status: row.status,
    baseVersion: row.base_version,
    targetVersion: row.target_version,
    rotateKek: row.rotate_kek,
    totalRows: Number(row.total_rows),
    rewrapped: Number(row.rewrapped),
    skipped: Number(row.skipped),
    failed: Number(row.failed),
    cursorVersion: row.cursor_version,
    cursorId: String(row.cursor_id),
    pass: row.pass,
    options: row.options ?? {},
    trigger: row.trigger,
    requestedBy: row.requested_by,
    cancelRequested: row.cancel_requested,
    cancelledBy: row.cancelled_by ?? null,
    lastError: row.last_error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    heartbeatAt: row.heartbeat_at,
  }
}

/** The rotation kind's `key_rotations` rows. */
const ROTATIONS: RunTable<RotationRun> = {
  kind: 'rotation',
  table: 'key_rotations',
  kekColumn: 'kek_name',
  moved: 'rewrapped',
  cursor: ['cursor_version', 'cursor_id'],
  failuresTable: 'key_rotation_failures',
  failuresRun: 'rotation_id',
  failuresLimit: null,
  toRun,
}

/**
 * Persistence of rotation runs and the rewrap scan / update.
 */
export class RotationStore
  extends RunRowStore<RotationRun>
  implements RunStore<RotationRun, StaleRow, RewrapResults>
{
  protected readonly runTable = ROTATIONS

  /**
   * Inserts a new running run; its `rotation.started` audit record (and
   * `authorize`: its approval consumed) commits with it.
   */
  createRun(input: {
    kekName: string
    baseVersion: number
    targetVersion: number | null
    rotateKek: boolean
    options: Record<string, unknown>
    trigger: RotationRun['trigger']
    requestedBy: string | null
    authorize?: RunAuthorize
  }): Promise<RotationRun> {
    return this.insertRun(
      {
        kek_name: input.kekName,
        base_version: input.baseVersion,
        target_version: input.targetVersion,
        rotate_kek: input.rotateKek,
        options: input.options,
        trigger: input.trigger,
        requested_by: input.requestedBy,
      },
      input.authorize
    )
  }

  /** Runs, newest first. */
  list(options: { kekName?: string; limit?: number } = {}): Promise<RotationRun[]> {
    return this.listRuns(options.kekName, options.limit)
  }

  /**
   * Rows of a KEK below `target`, per version: the lowest stale version at
   * or above `fromVersion`, or null when none is left.
   */
  async nextStaleVersion(
    kekName: string,
    fromVersion: number,
    target: number
  ): Promise<number | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT min(kek_version) AS v FROM vault_entries
        WHERE kek_name = ? AND kek_version >= ? AND kek_version < ?`,
      [kekName, fromVersion, target]
    )
    return rows[0].v === null ? null : Number(rows[0].v)
  }

  /**
   * Counts rows of a KEK below a version (uses the scan index).
   */
  async countStale(kekName: string, target: number): Promise<number> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT count(*)::bigint AS n FROM vault_entries WHERE kek_name = ? AND kek_version < ?`,
      [kekName, target]
    )
    return Number(rows[0].n)
  }

  /**
   * The next batch of one version, in id order after `afterId` up to
   * `untilId` (keyset).
   */
  async readBatch(
    kekName: string,
    version: number,
    afterId: string,
    limit: number,
    untilId: string | null = null
  ): Promise<StaleRow[]> {
    // A whole run (no upper bound) keeps the statement the fast path always ran.
    const upTo = untilId === null ? '' : ' AND id <= ?'
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT id, wrapped_dek FROM vault_entries
        WHERE kek_name = ? AND kek_version = ? AND id > ?${upTo}
        ORDER BY id LIMIT ?`,
      [kekName, version, afterId, ...(untilId === null ? [] : [untilId]), limit]
    )
    return rows.map((r: any) => ({ id: String(r.id), wrappedDek: r.wrapped_dek }))
  }

  /**
   * Commits one batch atomically: CAS-updates the rewrapped rows (a row
   * whose wrapped_dek changed since it was read is left alone: skipped),
   * records failures and moves the run's cursor and counters — only while
   * the run's lock is held (`fence`), else E_LOCK_LOST and nothing written.
   */
  async commitBatch(input: {
    runId: string
    target: number
    cursorVersion: number
    cursorId: string
    ids: string[]
    oldWrapped: string[]
    newWrapped: string[]
    failedIds: string[]
    failedCodes: string[]
    /**
     * The run's lock (`HeldLock.fence`) or a chunk's lease (distributed runs):
     * nothing is written unless it is still held.
     */
    fence?: CommitFence
  }): Promise<BatchCommit> {
    const chunk = input.fence && isChunkFence(input.fence) ? input.fence : null
    const held = fenceSql(input.fence)
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} WITH held AS (
         ${held.sql}
       ), upd AS (
         UPDATE vault_entries v
            SET wrapped_dek = u.new, kek_version = ?, rotated_at = now()
           FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(id, old, new)
          WHERE v.id = u.id AND v.wrapped_dek = u.old AND EXISTS (SELECT 1 FROM held)
         RETURNING 1
       ), fails AS (
         INSERT INTO key_rotation_failures (rotation_id, entry_id, error_code)
         SELECT ?, f.id, f.code FROM unnest(?::bigint[], ?::text[]) AS f(id, code)
          WHERE EXISTS (SELECT 1 FROM held)
         ON CONFLICT (rotation_id, entry_id) DO UPDATE
           SET attempts = key_rotation_failures.attempts + 1,
               error_code = EXCLUDED.error_code, last_seen_at = now()
         RETURNING 1
       ), ${this.commitTailSql(chunk, ',\n                 (SELECT count(*) FROM fails) AS f')}`,
      [
        ...held.bindings,
        input.target,
        pgArray(input.ids),
        pgArray(input.oldWrapped),
        pgArray(input.newWrapped),
        input.runId,
        pgArray(input.failedIds),
        pgArray(input.failedCodes),
        ...this.commitTailBindings(
          input.runId,
          chunk,
          { version: input.cursorVersion, id: input.cursorId },
          input.ids.length,
          input.failedIds.length
        ),
      ]
    )
    return this.committed(rows)
  }

  /** Rows still below the run's target. */
  countRemaining(run: RotationRun): Promise<number> {
    return this.countStale(run.kekName, run.targetVersion!)
  }

  /** The run's committed cursor. */
  cursorOf(run: RotationRun): RunCursor {
    return { version: run.cursorVersion, id: run.cursorId }
  }

  /**
   * The batch source: the next rows after `after`, one stale version at a
   * time (moving to the next stale version when one is exhausted; version
   * 0 = start), in id order within `range`. Null when nothing is left.
   */
  async nextBatch(
    run: RotationRun,
    after: RunCursor,
    range: IdRange,
    limit: number
  ): Promise<SourceBatch<StaleRow> | null> {
    const target = run.targetVersion!
    if (range.version !== undefined) {
      // A chunk: its one version, from its cursor to its end.
      const rows = await this.readBatch(run.kekName, range.version, after.id, limit, range.untilId)
      if (rows.length === 0) return null
      return { rows, cursor: { version: range.version, id: rows[rows.length - 1].id } }
    }
    let version = after.version
    let afterId = after.id
    for (;;) {
      if (version === 0) {
        const next = await this.nextStaleVersion(run.kekName, 0, target)
        if (next === null) return null
        version = next
        afterId = '0'
      }
      const rows = await this.readBatch(run.kekName, version, afterId, limit, range.untilId)
      if (rows.length > 0) return { rows, cursor: { version, id: rows[rows.length - 1].id } }
      const next = await this.nextStaleVersion(run.kekName, version + 1, target)
      if (next === null) return null
      version = next
      afterId = '0'
    }
  }

  /** Commits a rewrapped batch (commitBatch), fenced by the run's lock. */
  async commit(
    run: RotationRun,
    batch: PreparedBatch<StaleRow, RewrapResults>,
    fence: CommitFence
  ): Promise<BatchOutcome> {
    const ids: string[] = []
    const oldWrapped: string[] = []
    const newWrapped: string[] = []
    const failedIds: string[] = []
    const failedCodes: string[] = []
    batch.rows.forEach((row, index) => {
      const result = batch.prepared[index]
      if (result.ok) {
        ids.push(row.id)
        oldWrapped.push(row.wrappedDek)
        newWrapped.push(result.wrapped)
      } else {
        failedIds.push(row.id)
        failedCodes.push(result.code)
      }
    })
    const commit = await this.commitBatch({
      runId: run.id,
      target: run.targetVersion!,
      cursorVersion: batch.cursor.version,
      cursorId: batch.cursor.id,
      ids,
      oldWrapped,
      newWrapped,
      failedIds,
      failedCodes,
      fence,
    })
    return this.outcomeOf(commit, ids.length, failedIds.length)
  }

  /** `run` after a committed batch (the process's copy; the row was updated in SQL). */
  override advance(run: RotationRun, cursor: RunCursor, outcome: BatchOutcome): RotationRun {
    return { ...super.advance(run, cursor, outcome), cursorVersion: cursor.version }
  }
}
