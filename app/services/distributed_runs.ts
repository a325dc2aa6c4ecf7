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
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import db from '@adonisjs/lucid/services/db'
import { JobBatchDispatcher } from '@adonisjs/queue'
import { errorCode, safeMessage } from '#app/errors'
import type { RewrapConfig } from '#config/rewrap'
import { ChunkStore, type Chunk, type ChunkRunKind } from '#services/chunk_store'
import { Clock } from '#services/clock'
import { ForegroundDetector } from '#services/foreground_detector'
import { DatabaseLatencySignal } from '#services/latency_signal'
import { passDecision, shareOfRate } from '#services/run_budget'
import { RunEngine, type EnginePacing, type EngineRun } from '#services/run_engine'
import type { RunProgress } from '#services/run_progress'
import { runProgress } from '#services/run_progress'
import { RunDuties, type RunDuty } from '#services/run_duty'
import { DatabasePacingRows } from '#services/run_pacing_rows'
import type { RotationRun } from '#services/rotation_store'
import { DistributedKinds, type AnyRun, type DistributedKind } from '#services/distributed_kinds'

/** What a chunk job carries (ids only; never a secret). */
export interface RewrapChunkPayload {
  kind: ChunkRunKind
  runId: string
  chunkId: string
}

/** The queue chunk jobs go to. */
export const CHUNK_QUEUE = 'rewrap-chunks'

/**
 * The name chunk jobs are dispatched by; app/jobs/rewrap_chunk_job.ts is
 * the job of that name (rewrap:worker registers it).
 */
export const CHUNK_JOB = 'RewrapChunkJob'

/** This worker process: its id (in `rewrap_chunks.worker_id`) and its stop signal. */
export const workerContext: { id: string; signal: AbortSignal | undefined } = {
  id: `${hostname()}:${process.pid}`,
  signal: undefined,
}

/**
 * The run-wide duties of the runs this process works chunks of (the judge's
 * id: this worker, and a random part, so a restarted process with the same
 * pid is not taken for the one before it).
 */
export const runDuties = new RunDuties(
  `${workerContext.id}:${randomBytes(4).toString('hex')}`,
  (kind, runId, budgetRatio) => ({
    rows: new DatabasePacingRows(kind, runId, budgetRatio),
    signal: () => new DatabaseLatencySignal(),
  })
)

/**
 * Chunks of distributed runs: planning, working, settling.
 */
@inject()
export class DistributedRuns {
  constructor(
    private chunks: ChunkStore,
    private kinds: DistributedKinds,
    private clock: Clock
  ) {}

  #config(): RewrapConfig {
    return app.config.get<RewrapConfig>('rewrap')
  }

  /**
   * Puts a run (Step A done) on the queue: plans the chunks of its current
   * pass unless they exist, then one job per chunk not done. Returns the
   * run (still `running`; the workers move it).
   */
  async enqueue<Run extends EngineRun>(kindName: ChunkRunKind, run: Run): Promise<Run> {
    const kind = this.kinds.of(kindName)
    let current = run as unknown as AnyRun
    const state = await this.chunks.passState(kindName, current.id, current.pass)
    if (state.chunks === 0) {
      const remaining = await kind.store.countRemaining(current)
      current = await kind.store.update(current.id, {
        total_rows: kind.store.doneOf(current) + remaining,
      })
      await this.#plan(kindName, kind, current)
    } else {
      await this.#dispatchOpen(kindName, current.id, current.pass)
    }
    await this.settle(kindName, current.id)
    return ((await kind.store.find(current.id)) ?? current) as unknown as Run
  }

  /** `enqueue` for a rotation run. */
  enqueueRotation(run: RotationRun): Promise<RotationRun> {
    return this.enqueue('rotation', run)
  }

  /**
   * Works one chunk in this process (the job's body). Returns when the chunk
   * is done, was taken over by another worker, or its run stopped; a worker
   * shutting down gives the chunk back and puts a new job for it on the queue.
   */
  async runChunk(payload: RewrapChunkPayload): Promise<void> {
    const leaseMs = this.#config().distributed.leaseMs
    const kind = this.kinds.of(payload.kind)
    const chunk = await this.#take(kind, payload, leaseMs)
    if (!chunk) return
    const run = await kind.store.find(chunk.runId)
    if (!run || run.status !== 'running' || !kind.ready(run)) {
      await this.chunks.release(chunk)
      return
    }
    const engineKind = await kind.kind(run)
    const pacing = kind.pacing(run)
    pacing.maxRate = shareOfRate(pacing.maxRate, await this.chunks.liveCount(payload.kind, run.id))
    const engine = new RunEngine(
      this.clock,
      new ForegroundDetector(this.clock, this.#config().rotation.foreground)
    )
    const context = { kind: payload.kind, run: run.id, chunk: chunk.id, worker: workerContext.id }
    logger.info({ ...context, from: chunk.cursorId, until: chunk.untilId }, 'chunk taken')
    const duty = this.#duty(engineKind.label, run.id, pacing)
    let result
    try {
      // The run may be resting (its judge measures the baseline): no batch before it ends.
      await duty?.rest(0)
      result = await engine.driveRange(
        engineKind,
        run,
        { version: chunk.staleVersion, id: chunk.cursorId },
        { version: kind.scanVersion(chunk), untilId: chunk.untilId },
        pacing,
        { signal: workerContext.signal },
        { lost: false, fence: { chunkId: chunk.id, token: chunk.leaseToken, leaseMs } },
        duty
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
    } finally {
      if (duty) await runDuties.release(duty, workerContext.signal?.aborted === true)
    }
    if (result.stop === 'shutdown') {
      await this.chunks.release(chunk)
      await this.#dispatch([{ kind: payload.kind, runId: run.id, chunkId: chunk.id }])
      logger.info(context, 'worker stopping: chunk given back to the queue')
      return
    }
    if (result.stop) await this.chunks.release(chunk)
    else await this.chunks.finish(chunk)
    await this.settle(payload.kind, run.id)
  }

  /**
   * The run-level decision, taken once: when every chunk of the current
   * pass is done, completes the run (or with errors) or starts the next
   * pass; when a cancel was requested and no chunk is held, ends it
   * `cancelled` (resumable). Safe to call from anywhere, any time.
   */
  async settle(kindName: ChunkRunKind, runId: string): Promise<void> {
    const kind = this.kinds.of(kindName)
    await db.transaction(async (trx) => {
      await trx.rawQuery(`SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, [
        `rewrap:settle:${kindName}:${runId}`,
      ])
      const run = await kind.store.find(runId)
      if (!run || run.status !== 'running' || !kind.ready(run)) return
      const state = await this.chunks.passState(kindName, runId, run.pass)
      const context = { kind: kindName, run: run.id }
      if (run.cancelRequested) {
        if (state.live > 0) return
        await kind.store.update(run.id, {
          status: 'cancelled',
          cancel_requested: false,
          cancelled_by: 'operator',
        })
        logger.info(context, `distributed ${kind.label} cancelled; resumable`)
        return
      }
      if (state.open > 0) return
      const remaining = await kind.store.countRemaining(run)
      const maxPasses = this.#config().rotation.maxPasses
      const decision = passDecision(remaining, state.failed, run.pass, maxPasses)
      if (decision === 'completed') {
        await kind.store.update(run.id, { status: 'completed', finished_at: this.clock.now() })
        logger.info(context, `distributed ${kind.label} completed`)
      } else if (decision === 'completed_with_errors') {
        await kind.store.update(run.id, {
          status: 'completed_with_errors',
          finished_at: this.clock.now(),
          last_error: kind.leftoverMessage(run, remaining),
        })
        logger.info({ ...context, remaining }, `distributed ${kind.label} completed with errors`)
      } else {
        const next = await kind.store.update(run.id, {
          pass: run.pass + 1,
          total_rows: run.totalRows + remaining,
        })
        await this.#plan(kindName, kind, next)
        logger.info(
          { ...context, pass: next.pass, remaining },
          `distributed ${kind.label}: next pass`
        )
      }
    })
  }

  /**
   * Follows a run until it ends: its progress every `intervalMs`, settling
   * it on the way (a run whose last worker died before settling still
   * ends). Aborting `signal` requests a cancel (the workers stop after
   * their batch) and waits for the run to stop.
   */
  async follow<Run extends EngineRun>(
    kindName: ChunkRunKind,
    runId: string,
    hooks: {
      signal?: AbortSignal
      onProgress?: (progress: RunProgress<Run>) => void
      intervalMs?: number
    } = {}
  ): Promise<Run> {
    const kind = this.kinds.of(kindName)
    const startedAt = this.clock.now().getTime()
    let cancelled = false
    let first: number | null = null
    for (;;) {
      if (hooks.signal?.aborted && !cancelled) {
        cancelled = true
        await kind.store.requestCancel(runId)
      }
      await this.settle(kindName, runId)
      const run = (await kind.store.find(runId))!
      const done = kind.store.doneOf(run)
      first ??= done
      const now = this.clock.now().getTime()
      hooks.onProgress?.(runProgress(run as unknown as Run, done, done - first, startedAt, now))
      if (run.status !== 'running') return run as unknown as Run
      await this.clock.sleep(hooks.intervalMs ?? 500)
    }
  }

  /**
   * The run-wide duty a chunk is paced by under the latency budget (its
   * run's row in `run_pacing`, judged by one of the workers); null when
   * paced by the fixed nice ratio.
   */
  #duty(label: string, runId: string, pacing: EnginePacing): RunDuty | null {
    if (!pacing.latencyBudget) return null
    return runDuties.acquire(this.clock, label, runId, pacing.latencyBudget, {
      kind: label,
      run: runId,
      worker: workerContext.id,
    })
  }

  /** Takes the job's chunk, waiting while another worker's lease on it is live. */
  async #take(
    kind: DistributedKind,
    payload: RewrapChunkPayload,
    leaseMs: number
  ): Promise<Chunk | null> {
    for (;;) {
      const taken = await this.chunks.take(payload.chunkId, workerContext.id, leaseMs)
      if (taken) return taken
      const chunk = await this.chunks.find(payload.chunkId)
      if (!chunk || chunk.status !== 'running') return null
      const run = await kind.store.find(chunk.runId)
      if (!run || run.status !== 'running' || workerContext.signal?.aborted) return null
      // Another worker holds it: wait for its lease to end (or for it to finish the chunk).
      const left = (chunk.leaseUntil?.getTime() ?? 0) - this.clock.now().getTime()
      await this.clock.sleep(Math.min(1000, Math.max(50, left + 50)))
    }
  }

  async #plan(kindName: ChunkRunKind, kind: DistributedKind, run: AnyRun): Promise<void> {
    const chunkRows = Number(run.options.chunkRows ?? this.#config().distributed.chunkRows)
    const ranges = await kind.ranges(run, chunkRows)
    const created = await this.chunks.create(kindName, run.id, run.pass, ranges)
    await this.#dispatch(created.map((c) => ({ kind: kindName, runId: run.id, chunkId: c.id })))
    logger.info(
      { kind: kindName, run: run.id, pass: run.pass, chunks: created.length },
      'run cut into chunks'
    )
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
    await new JobBatchDispatcher<RewrapChunkPayload>(CHUNK_JOB, payloads).toQueue(CHUNK_QUEUE)
  }
}
