/*
|--------------------------------------------------------------------------
| Distributed runs: chunks as jobs
|--------------------------------------------------------------------------
|
| One run shared by worker processes on any number of machines, on the job
| engine of config/queue.ts (@adonisjs/queue on the app's PostgreSQL):
|
| 1. `enqueue` (under the run's lock, after Step A): the pass is cut into
|    chunks (per stale version, at id percentiles, about
|    `distributed.chunkRows` rows each), one job per chunk.
| 2. `runChunk` (a worker, `rewrap:worker`): takes the chunk (a new fencing
|    token; waits while another worker's lease is live) and drives the run
|    engine over its range from its committed cursor; every commit is fenced
|    by the token in SQL and moves the chunk's cursor and lease with the rows
|    and the run's counters (app/services/chunk_fence.ts).
| 3. `settle` (after each chunk, and by whoever follows the run): once every
|    chunk of the pass is done, the remaining-rows decision — completed,
|    completed_with_errors, or the next pass (new chunks, new jobs); a
|    cancel requested in the run row ends it `cancelled` once no chunk is held.
|    Serialised per run by a transaction-level advisory lock, so it is taken
|    once whoever calls it.
|
*/
import { hostname } from 'node:os'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import db from '@adonisjs/lucid/services/db'
import { errorCode, safeMessage } from '#app/errors'
import type { RewrapConfig } from '#config/rewrap'
import RewrapChunkJob from '#app/jobs/rewrap_chunk_job'
import type { RewrapChunkPayload } from '#app/jobs/rewrap_chunk_job'
import {
  ChunkStore,
  percentileBounds,
  rangesFrom,
  type Chunk,
  type ChunkRange,
  type ChunkRunKind,
} from '#services/chunk_store'
import { Clock } from '#services/clock'
import { rowsPerVersionOf } from '#services/entry_counts'
import { ForegroundDetector } from '#services/foreground_detector'
import { passDecision, shareOfRate } from '#services/run_budget'
import { RunEngine, type EngineRun } from '#services/run_engine'
import type { RunProgress } from '#services/run_progress'
import { runProgress } from '#services/run_progress'
import { RotationStore, type RotationRun } from '#services/rotation_store'
import { StaleRowRewrapper } from '#services/stale_row_rewrapper'

/** This worker process: its id (in `rewrap_chunks.worker_id`) and its stop signal. */
export const workerContext: { id: string; signal: AbortSignal | undefined } = {
  id: `${hostname()}:${process.pid}`,
  signal: undefined,
}

/**
 * Chunks of distributed runs: planning, working, settling.
 */
@inject()
export class DistributedRuns {
  constructor(
    private chunks: ChunkStore,
    private rotations: RotationStore,
    private rewrapper: StaleRowRewrapper,
    private clock: Clock
  ) {}

  #config(): RewrapConfig {
    return app.config.get<RewrapConfig>('rewrap')
  }

  /**
   * Puts a rotation run (Step A done) on the queue: plans the chunks of its
   * current pass unless they exist, then one job per chunk not done. Returns
   * the run (still `running`; the workers move it).
   */
  async enqueueRotation(run: RotationRun): Promise<RotationRun> {
    const state = await this.chunks.passState('rotation', run.id, run.pass)
    if (state.chunks === 0) {
      const stale = await rowsPerVersionOf(run.kekName, run.targetVersion!)
      const remaining = stale.reduce((sum, v) => sum + v.rows, 0)
      run = await this.rotations.update(run.id, {
        total_rows: this.rotations.doneOf(run) + remaining,
      })
      await this.#plan('rotation', run, await this.#rotationRanges(run, stale))
    } else {
      await this.#dispatchOpen('rotation', run.id, run.pass)
    }
    await this.settle('rotation', run.id)
    return (await this.rotations.find(run.id)) ?? run
  }

  /**
   * Works one chunk in this process (the job's body). Returns when the chunk
   * is done, was taken over by another worker, or its run stopped; a worker
   * shutting down gives the chunk back and puts a new job for it on the queue.
   */
  async runChunk(payload: RewrapChunkPayload): Promise<void> {
    const leaseMs = this.#config().distributed.leaseMs
    const chunk = await this.#take(payload, leaseMs)
    if (!chunk) return
    const run = await this.rotations.find(chunk.runId)
    if (!run || run.status !== 'running' || run.targetVersion === null) {
      await this.chunks.release(chunk)
      return
    }
    const kind = await this.rewrapper.kind(run)
    const pacing = this.rewrapper.pacing(run, {})
    pacing.maxRate = shareOfRate(pacing.maxRate, await this.chunks.liveCount('rotation', run.id))
    const engine = new RunEngine(
      this.clock,
      new ForegroundDetector(this.clock, this.#config().rotation.foreground)
    )
    const context = { run: run.id, chunk: chunk.id, worker: workerContext.id }
    logger.info({ ...context, from: chunk.cursorId, until: chunk.untilId }, 'chunk taken')
    let result
    try {
      result = await engine.driveRange(
        kind,
        run,
        { version: chunk.staleVersion, id: chunk.cursorId },
        { version: chunk.staleVersion, untilId: chunk.untilId },
        pacing,
        { signal: workerContext.signal },
        { lost: false, fence: { chunkId: chunk.id, token: chunk.leaseToken, leaseMs } }
      )
    } catch (error) {
      if (errorCode(error) === 'E_LOCK_LOST') {
        // Taken over (our lease expired): the other worker goes on from the committed cursor.
        logger.warn(context, 'chunk taken over by another worker; nothing more written')
        return
      }
      await this.chunks.release(chunk).catch(() => {})
      logger.warn({ ...context, err: safeMessage(error) }, 'chunk stopped; given back')
      throw error
    }
    if (result.stop === 'shutdown') {
      await this.chunks.release(chunk)
      await this.#dispatch([{ kind: 'rotation', runId: run.id, chunkId: chunk.id }])
      logger.info(context, 'worker stopping: chunk given back to the queue')
      return
    }
    if (result.stop) await this.chunks.release(chunk)
    else await this.chunks.finish(chunk)
    await this.settle('rotation', run.id)
  }

  /**
   * The run-level decision, taken once: when every chunk of the current
   * pass is done, completes the run (or with errors) or starts the next
   * pass; when a cancel was requested and no chunk is held, ends it
   * `cancelled` (resumable). Safe to call from anywhere, any time.
   */
  async settle(kind: ChunkRunKind, runId: string): Promise<void> {
    await db.transaction(async (trx) => {
      await trx.rawQuery(`SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, [
        `rewrap:settle:${kind}:${runId}`,
      ])
      const run = await this.rotations.find(runId)
      if (!run || run.status !== 'running' || run.targetVersion === null) return
      const state = await this.chunks.passState(kind, runId, run.pass)
      if (run.cancelRequested) {
        if (state.live > 0) return
        await this.rotations.update(run.id, {
          status: 'cancelled',
          cancel_requested: false,
          cancelled_by: 'operator',
        })
        logger.info({ run: run.id }, 'distributed rotation cancelled; resumable')
        return
      }
      if (state.open > 0) return
      const remaining = await this.rotations.countRemaining(run)
      const maxPasses = this.#config().rotation.maxPasses
      const decision = passDecision(remaining, state.failed, run.pass, maxPasses)
      if (decision === 'completed') {
        await this.rotations.update(run.id, { status: 'completed', finished_at: this.clock.now() })
        logger.info({ run: run.id }, 'distributed rotation completed')
      } else if (decision === 'completed_with_errors') {
        await this.rotations.update(run.id, {
          status: 'completed_with_errors',
          finished_at: this.clock.now(),
          last_error: `${remaining} rows still below version ${run.targetVersion}; see key_rotation_failures`,
        })
        logger.info({ run: run.id, remaining }, 'distributed rotation completed with errors')
      } else {
        const next = await this.rotations.update(run.id, {
          pass: run.pass + 1,
          total_rows: run.totalRows + remaining,
        })
        const stale = await rowsPerVersionOf(run.kekName, run.targetVersion)
        await this.#plan(kind, next, await this.#rotationRanges(next, stale))
        logger.info({ run: run.id, pass: next.pass, remaining }, 'distributed rotation: next pass')
      }
    })
  }

  /**
   * Follows a run until it ends: its progress every `intervalMs`, settling
   * it on the way (a run whose last worker died before settling still
   * ends). Aborting `signal` requests a cancel (the workers stop after
   * their batch) and waits for the run to stop.
   */
  async follow(
    runId: string,
    hooks: {
      signal?: AbortSignal
      onProgress?: (progress: RunProgress<RotationRun>) => void
      intervalMs?: number
    } = {}
  ): Promise<RotationRun> {
    const startedAt = this.clock.now().getTime()
    let cancelled = false
    let first: number | null = null
    for (;;) {
      if (hooks.signal?.aborted && !cancelled) {
        cancelled = true
        await this.rotations.requestCancel(runId)
      }
      await this.settle('rotation', runId)
      const run = (await this.rotations.find(runId))!
      const done = this.rotations.doneOf(run)
      first ??= done
      hooks.onProgress?.(
        runProgress(run, done, done - first, startedAt, this.clock.now().getTime())
      )
      if (run.status !== 'running') return run
      await this.clock.sleep(hooks.intervalMs ?? 500)
    }
  }

  /** Takes the job's chunk, waiting while another worker's lease on it is live. */
  async #take(payload: RewrapChunkPayload, leaseMs: number): Promise<Chunk | null> {
    for (;;) {
      const taken = await this.chunks.take(payload.chunkId, workerContext.id, leaseMs)
      if (taken) return taken
      const chunk = await this.chunks.find(payload.chunkId)
      if (!chunk || chunk.status !== 'running') return null
      const run = await this.rotations.find(chunk.runId)
      if (!run || run.status !== 'running' || workerContext.signal?.aborted) return null
      // Another worker holds it: wait for its lease to end (or for it to finish the chunk).
      const left = (chunk.leaseUntil?.getTime() ?? 0) - this.clock.now().getTime()
      await this.clock.sleep(Math.min(1000, Math.max(50, left + 50)))
    }
  }

  /** The chunks of a rotation pass: per stale version, cut at id percentiles. */
  async #rotationRanges(
    run: RotationRun,
    stale: Array<{ version: number; rows: number }>
  ): Promise<ChunkRange[]> {
    const chunkRows = Number(run.options.chunkRows ?? this.#config().distributed.chunkRows)
    const ranges: ChunkRange[] = []
    for (const { version, rows } of stale) {
      const bounds = await percentileBounds(
        'kek_name = ? AND kek_version = ?',
        [run.kekName, version],
        rows,
        chunkRows
      )
      ranges.push(...rangesFrom(version, bounds))
    }
    return ranges
  }

  async #plan(kind: ChunkRunKind, run: EngineRun, ranges: ChunkRange[]): Promise<void> {
    const created = await this.chunks.create(kind, run.id, run.pass, ranges)
    await this.#dispatch(created.map((c) => ({ kind, runId: run.id, chunkId: c.id })))
    logger.info({ run: run.id, pass: run.pass, chunks: created.length }, 'run cut into chunks')
  }

  async #dispatchOpen(kind: ChunkRunKind, runId: string, pass: number): Promise<void> {
    const { rows } = await db.rawQuery(
      `SELECT id FROM rewrap_chunks
        WHERE run_kind = ? AND run_id = ? AND pass = ? AND status <> 'done' ORDER BY chunk_no`,
      [kind, runId, pass]
    )
    await this.#dispatch(rows.map((r: any) => ({ kind, runId, chunkId: String(r.id) })))
  }

  async #dispatch(payloads: RewrapChunkPayload[]): Promise<void> {
    if (payloads.length === 0) return
    await app.container.make('queue.manager')
    await RewrapChunkJob.dispatchMany(payloads)
  }
}
