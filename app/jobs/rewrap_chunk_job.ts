/*
|--------------------------------------------------------------------------
| Job: one chunk of a distributed run
|--------------------------------------------------------------------------
|
| A chunk of a rotation or re-encrypt run, as a job of the `rewrap-chunks`
| queue (@adonisjs/queue on the app's PostgreSQL). The job only names the
| chunk: its range, cursor and counters live in `rewrap_chunks`, so a job
| taken again after its worker died continues from the committed cursor.
| DistributedRuns dispatches it by name (CHUNK_JOB) and owns its payload;
| rewrap:worker registers this class under that name.
|
*/
import app from '@adonisjs/core/services/app'
import { Job } from '@adonisjs/queue'
import {
  CHUNK_JOB,
  CHUNK_QUEUE,
  DistributedRuns,
  type RewrapChunkPayload,
} from '#services/distributed_runs'

/**
 * Moves one chunk (DistributedRuns.runChunk).
 */
export default class RewrapChunkJob extends Job<RewrapChunkPayload> {
  static options = { name: CHUNK_JOB, queue: CHUNK_QUEUE }

  /** Runs the chunk in this worker process. */
  async execute(): Promise<void> {
    const runs = await app.container.make(DistributedRuns)
    await runs.runChunk(this.payload)
  }
}
