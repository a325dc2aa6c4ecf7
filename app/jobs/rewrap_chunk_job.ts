/*
|--------------------------------------------------------------------------
| Job: one chunk of a distributed run
|--------------------------------------------------------------------------
|
| A chunk of a rotation or re-encrypt run, as a job of the `rewrap-chunks`
| queue (@adonisjs/queue on the app's PostgreSQL). The job only names the
| chunk: its range, cursor and counters live in `rewrap_chunks`, so a job
| taken again after its worker died continues from the committed cursor.
|
*/
import app from '@adonisjs/core/services/app'
import { Job } from '@adonisjs/queue'
import type { ChunkRunKind } from '#services/chunk_store'

/** What a chunk job carries (ids only; never a secret). */
export interface RewrapChunkPayload {
  kind: ChunkRunKind
  runId: string
  chunkId: string
}

/** The queue chunk jobs go to. */
export const CHUNK_QUEUE = 'rewrap-chunks'

/**
 * Moves one chunk (DistributedRuns.runChunk).
 */
export default class RewrapChunkJob extends Job<RewrapChunkPayload> {
  static options = { name: 'RewrapChunkJob', queue: CHUNK_QUEUE }

  /** Runs the chunk in this worker process. */
  async execute(): Promise<void> {
    const { DistributedRuns } = await import('#services/distributed_runs')
    const runs = await app.container.make(DistributedRuns)
    await runs.runChunk(this.payload)
  }
}
