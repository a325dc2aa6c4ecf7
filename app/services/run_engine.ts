/*
|--------------------------------------------------------------------------
| Run engine (rotation and re-encrypt)
|--------------------------------------------------------------------------
|
| The one outer loop of every batched run. A run kind gives its store (the
| batch source, the run rows, the fenced batch commit) and "prepare a
| batch" (the KMS and crypto work); the engine owns the rest, the same for
| every kind:
|
| - passes: a keyset scan from the committed cursor, then a count of the
|   rows still to move; rows written at an old state meanwhile get another
|   pass (bounded by `maxPasses`), rows the KMS rejected end the run
|   `completed_with_errors`;
| - the KMS-outage bound: an E_KMS_UNAVAILABLE prepare is retried with
|   backoff for up to `kmsOutageMs`;
| - the lock: no commit is attempted once the lock's session is gone, and
|   each commit is fenced by it in SQL (E_LOCK_LOST, nothing written);
| - stopping: an abort signal (Ctrl-C, SIGTERM) or a cancel requested in
|   the run row (any process, the API) ends the run `cancelled` after the
|   batch in flight, resumable;
| - pacing (Throttle), optional pipelining (the next batch prepared while
|   the current one commits, at full speed only), progress after every
|   batch.
|
| Riding through a database outage around this loop: run_session.ts.
|
| Over 400 lines, kept whole on purpose: the interfaces every run kind and
| store implement (about half the file, each documented) sit beside the
| one loop (`#pass`) that both entry points share — `drive` (a whole run)
| and `driveRange` (one chunk of a distributed run). A split would put the
| contract away from the only code that reads it.
|
*/
import logger from '@adonisjs/core/services/logger'
import { E_LOCK_LOST, errorCode } from '#app/errors'
import type { HeldLock } from '#services/advisory_lock'
import type { Clock } from '#services/clock'
import { passDecision } from '#services/run_budget'
import { runProgress, type RunProgress } from '#services/run_progress'
import { Throttle, type DutyPacer, type ForegroundSignal } from '#services/throttle'
import { LatencyPacer, type LatencyPacerOptions, type LatencySignal } from '#services/latency_pacer'
import { DatabaseLatencySignal } from '#services/latency_signal'
import { runPacingSink } from '#services/run_pacing_rows'

/** Who stopped a run: an `operator` (API cancel, Ctrl-C) or a `shutdown` (SIGTERM). */
export type CancelledBy = 'operator' | 'shutdown'

/** What the engine reads of any run row. */
export interface EngineRun {
  id: string
  status: 'running' | 'completed' | 'completed_with_errors' | 'failed' | 'cancelled'
  totalRows: number
  pass: number
  skipped: number
  failed: number
}

/**
 * A position in a run's scan: the last row done, in (version, id) order.
 * Kinds that scan one key range only (re-encrypt) keep `version` 0.
 */
export interface RunCursor {
  version: number
  id: string
}

/**
 * The ids a scan covers: `untilId` null = to the end of the table. A whole
 * run is one range; a later distributed run gives each chunk its own.
 */
export interface IdRange {
  untilId: string | null
  /** A chunk's one stale version (rotation): the scan never moves on to another. */
  version?: number
}

/**
 * A chunk's lease (distributed runs): a commit writes only while the chunk's
 * `lease_token` is still `token` (no other worker took the chunk over), and
 * moves the chunk's cursor, counters and lease in the same statement.
 */
export interface ChunkFence {
  chunkId: string
  token: string
  /** How far each commit extends the lease. */
  leaseMs: number
}

/** What a commit is fenced by: the run's advisory lock (`HeldLock.fence`) or a chunk's lease. */
export type CommitFence = HeldLock['fence'] | ChunkFence

/** True for a chunk's lease. */
export function isChunkFence(fence: CommitFence): fence is ChunkFence {
  return 'chunkId' in fence
}

/** The fence of a run: `HeldLock`, or a chunk's lease (never `lost`: its commits tell). */
export interface RunFence {
  readonly lost: boolean
  readonly fence: CommitFence
}

/** Rows read by a batch source, and the cursor just after them. */
export interface SourceBatch<Row> {
  rows: Row[]
  cursor: RunCursor
}

/** What one fenced batch commit changed. */
export interface BatchOutcome {
  /** Rows written (moved to the target). */
  moved: number
  /** Rows changed by someone else since they were read (left alone; a later pass sees them). */
  skipped: number
  /** Rows the KMS or the crypto refused (recorded as the run's failures). */
  failed: number
  /** The run row asked the run to stop (API cancel from any process). */
  cancelRequested: boolean
}

/**
 * One store per run kind: the run rows, the batch source and the commit.
 * Every commit is ONE statement that writes the rows (compare-and-swap on
 * what was read), records failures and adds to the run's counters and
 * moves its cursor and heartbeat — only while `fence` (the run's lock) is
 * held, else E_LOCK_LOST with nothing written. The counters are added to
 * in SQL (`n = n + k`), never written from the process's copy, so commits
 * of several workers on one run add up.
 */
export interface RunStore<Run extends EngineRun, Row, Prepared> {
  /** The run row now, or null. */
  find(id: string): Promise<Run | null>
  /** Sets columns (snake_case, from code); a status change is audited with it. */
  update(id: string, fields: Record<string, unknown>): Promise<Run>
  /** Rows still to move (the remaining-rows decision after each pass). */
  countRemaining(run: Run): Promise<number>
  /** The run's committed cursor. */
  cursorOf(run: Run): RunCursor
  /** The columns that put the cursor back to the start (the next pass). */
  cursorStartFields(): Record<string, unknown>
  /** The next rows after `after` within `range`, at most `limit`; null when none is left. */
  nextBatch(
    run: Run,
    after: RunCursor,
    range: IdRange,
    limit: number
  ): Promise<SourceBatch<Row> | null>
  /** Commits a prepared batch (see above). */
  commit(run: Run, batch: PreparedBatch<Row, Prepared>, fence: CommitFence): Promise<BatchOutcome>
  /** `run` with a committed batch's counters and cursor applied (the process's copy). */
  advance(run: Run, cursor: RunCursor, outcome: BatchOutcome): Run
  /** Rows done in all (moved + skipped + failed). */
  doneOf(run: Run): number
}

/** A batch read and prepared, ready to commit. */
export interface PreparedBatch<Row, Prepared> {
  rows: Row[]
  cursor: RunCursor
  prepared: Prepared
}

/** A run kind: its store and its per-batch work. */
export interface RunKind<Run extends EngineRun, Row, Prepared> {
  /** For logs and messages: `rotation`, `re-encrypt`. */
  label: string
  store: RunStore<Run, Row, Prepared>
  /** Log fields naming the run (never a secret). */
  logContext(run: Run): Record<string, unknown>
  /**
   * The KMS (and crypto) work of one batch. Throws E_KMS_UNAVAILABLE during
   * an outage (retried by the engine); per-row refusals go into `Prepared`.
   * Must leave no secret behind in memory, whether it returns or throws.
   */
  prepare(run: Run, rows: Row[]): Promise<Prepared>
  /** The `last_error` of a run that ends with rows left (`remaining`). */
  leftoverMessage(run: Run, remaining: number): string
  /** Called after each successful commit (e.g. to drop cached DEKs of the moved rows). */
  afterCommit?(batch: PreparedBatch<Row, Prepared>, outcome: BatchOutcome): void
}

/** Sizes, bounds and pacing of one run (resolved from options, the run row and the config). */
export interface EnginePacing {
  batchSize: number
  /** Batch size while paced (shorter bursts of database work between the sleeps). */
  pacedBatchSize: number
  sleepMs: number
  maxRate: number
  niceRatio: number
  /**
   * Pace by the foreground latency budget (null: by the fixed `niceRatio`).
   * The controller starts from the nice ratio's duty, 1 / (1 + niceRatio).
   */
  latencyBudget: LatencyPacerOptions | null
  maxPasses: number
  kmsOutageMs: number
  /** Prepare the next batch while the current one commits (at full speed only). */
  overlap: boolean
}

/** Stop signal and progress callback of a run. */
export interface EngineHooks<Run> {
  /**
   * Aborting finishes the current batch and leaves the run resumable. Abort
   * with the reason `'operator'` for a person's stop; any other reason is a
   * shutdown.
   */
  signal?: AbortSignal
  onProgress?: (progress: RunProgress<Run>) => void | Promise<void>
}

const WHOLE_RANGE: IdRange = { untilId: null }

/**
 * Drives a run of any kind from its committed cursor to its end.
 */
export class RunEngine {
  constructor(
    private clock: Clock,
    private foreground: ForegroundSignal | null,
    /** The foreground latency (tests inject one; default: the HTTP servers' timings). */
    private latency: (() => LatencySignal) | null = null
  ) {}

  /**
   * Moves every row of `run` batch by batch, pass after pass. Ends the run
   * `completed`, `completed_with_errors` or `cancelled` (resumable) and
   * returns it. Throws E_LOCK_LOST once `lock`'s session is gone (nothing
   * of the batch written), the database's errors while it is unreachable,
   * and E_KMS_UNAVAILABLE past the outage bound.
   */
  async drive<Run extends EngineRun, Row, Prepared>(
    kind: RunKind<Run, Row, Prepared>,
    run: Run,
    pacing: EnginePacing,
    hooks: EngineHooks<Run>,
    lock: RunFence
  ): Promise<Run> {
    const { store } = kind
    const throttle = this.#throttle(pacing, this.#pacer(kind, run, pacing))
    const startedAt = this.clock.now().getTime()
    const priorDone = store.doneOf(run)
    let doneHere = 0
    run = await store.update(run.id, {
      total_rows: priorDone + (await store.countRemaining(run)),
    })
    logger.info({ ...kind.logContext(run), total: run.totalRows }, `${kind.label} rows started`)

    let cursor = store.cursorOf(run)
    for (;;) {
      const pass = await this.#pass(kind, run, cursor, WHOLE_RANGE, pacing, hooks, lock, throttle, {
        startedAt,
        priorDone,
        doneHere,
      })
      run = pass.run
      cursor = pass.cursor
      doneHere = pass.doneHere
      const failedThisPass = pass.failed
      if (pass.stop) {
        logger.info(
          { ...kind.logContext(run), by: pass.stop },
          `${kind.label} cancelled; resumable`
        )
        return store.update(run.id, {
          status: 'cancelled',
          cancel_requested: false,
          cancelled_by: pass.stop,
        })
      }

      const remaining = await store.countRemaining(run)
      const decision = passDecision(remaining, failedThisPass, run.pass, pacing.maxPasses)
      if (decision === 'completed') {
        const final = await store.update(run.id, {
          status: 'completed',
          finished_at: this.clock.now(),
        })
        logger.info(kind.logContext(final), `${kind.label} completed`)
        return final
      }
      if (decision === 'completed_with_errors') {
        const final = await store.update(run.id, {
          status: 'completed_with_errors',
          finished_at: this.clock.now(),
          last_error: kind.leftoverMessage(run, remaining),
        })
        // Each failed row was warned when it failed; the end of the run is an info record (the
        // command's summary and the run row say it with the counts, once).
        logger.info({ ...kind.logContext(run), remaining }, `${kind.label} completed with errors`)
        return final
      }
      // Rows written at an old state while the scan ran: another pass.
      run = await store.update(run.id, {
        pass: run.pass + 1,
        ...store.cursorStartFields(),
        total_rows: run.totalRows + remaining,
      })
      cursor = store.cursorOf(run)
    }
  }

  /**
   * Moves the rows of one id range of `run` (a chunk of a distributed run)
   * from `cursor` to the range's end, batch by batch, each commit fenced by
   * `fence` (the chunk's lease). Unlike `drive` it never ends the run: the
   * remaining-rows decision is taken once all chunks are done. Returns the
   * run as last seen and, when it stopped early, who stopped it (an abort
   * signal, or a cancel requested in the run row). Paced by the run-wide
   * duty `pacer` (app/services/run_duty.ts) under a latency budget, else by
   * the fixed nice ratio.
   */
  async driveRange<Run extends EngineRun, Row, Prepared>(
    kind: RunKind<Run, Row, Prepared>,
    run: Run,
    cursor: RunCursor,
    range: IdRange,
    pacing: EnginePacing,
    hooks: EngineHooks<Run>,
    fence: RunFence,
    pacer: DutyPacer | null = null
  ): Promise<{ run: Run; moved: number; stop: CancelledBy | null }> {
    // Not this process's own LatencyPacer: one worker of many cannot measure an idle
    // baseline while the others work. The run's judge does, for all (run_duty.ts).
    const throttle = this.#throttle(pacing, pacing.latencyBudget ? pacer : null)
    const startedAt = this.clock.now().getTime()
    const pass = await this.#pass(kind, run, cursor, range, pacing, hooks, fence, throttle, {
      startedAt,
      priorDone: kind.store.doneOf(run),
      doneHere: 0,
    })
    return { run: pass.run, moved: pass.doneHere, stop: pass.stop }
  }

  /** One keyset scan over `range` from `cursor`: read, prepare, commit, pace, batch after batch. */
  async #pass<Run extends EngineRun, Row, Prepared>(
    kind: RunKind<Run, Row, Prepared>,
    run: Run,
    cursor: RunCursor,
    range: IdRange,
    pacing: EnginePacing,
    hooks: EngineHooks<Run>,
    lock: RunFence,
    throttle: Throttle,
    progress: { startedAt: number; priorDone: number; doneHere: number }
  ): Promise<{
    run: Run
    cursor: RunCursor
    doneHere: number
    failed: number
    stop: CancelledBy | null
  }> {
    const { store } = kind
    let { doneHere } = progress
    let failed = 0
    let next = this.#prepare(kind, run, cursor, range, pacing.batchSize, pacing.kmsOutageMs)
    for (;;) {
      const batch = await next
      if (!batch) return { run, cursor, doneHere, failed, stop: null }
      cursor = batch.cursor
      // The lock's session ended: stop before writing (the session takes it back or stops).
      if (lock.lost) throw new E_LOCK_LOST([])
      const stopping = hooks.signal?.aborted
      // Full speed: the next batch's read + KMS work overlaps this commit. Paced (the
      // database serves other work): one step at a time, so the loop never keeps two
      // cores busy while requests are waiting for one.
      const overlap = pacing.overlap && !throttle.paced
      if (!stopping && overlap) {
        next = this.#prepare(kind, run, cursor, range, pacing.batchSize, pacing.kmsOutageMs)
        // Awaited after the commit below; handled now so a failure is not "unhandled".
        next.catch(() => {})
      }
      const outcome = await store.commit(run, batch, lock.fence)
      kind.afterCommit?.(batch, outcome)
      failed += outcome.failed
      doneHere += batch.rows.length
      run = store.advance(run, cursor, outcome)
      await hooks.onProgress?.(
        runProgress(
          run,
          progress.priorDone + doneHere,
          doneHere,
          progress.startedAt,
          this.clock.now().getTime()
        )
      )
      if (stopping || outcome.cancelRequested || hooks.signal?.aborted) {
        if (!stopping && overlap) await next.catch(() => null)
        const by: CancelledBy =
          outcome.cancelRequested || hooks.signal?.reason === 'operator' ? 'operator' : 'shutdown'
        return { run, cursor, doneHere, failed, stop: by }
      }
      const wasPaced = throttle.paced
      await throttle.afterBatch(batch.rows.length)
      if (throttle.paced !== wasPaced) {
        // Switched: log switches, not every batch.
        logger.info(
          { ...kind.logContext(run), kind: kind.label, paced: throttle.paced },
          throttle.paced
            ? 'rewrap paced: other sessions use the database'
            : 'rewrap at full speed: no other sessions'
        )
      }
      if (!overlap) {
        const size = throttle.batchSize(pacing.batchSize, pacing.pacedBatchSize)
        next = this.#prepare(kind, run, cursor, range, size, pacing.kmsOutageMs)
      }
    }
  }

  /** The pacing of one run or chunk: `pacing`'s limits, the foreground signal, `pacer` (if any). */
  #throttle(pacing: EnginePacing, pacer: DutyPacer | null): Throttle {
    return new Throttle(
      this.clock,
      { sleepMs: pacing.sleepMs, maxRate: pacing.maxRate, niceRatio: pacing.niceRatio },
      this.foreground,
      pacer
    )
  }

  /** The run's latency pacer (its state in `run_pacing`), or null when paced by the nice ratio. */
  #pacer<Run extends EngineRun>(
    kind: RunKind<Run, any, any>,
    run: Run,
    pacing: EnginePacing
  ): LatencyPacer | null {
    if (!pacing.latencyBudget) return null
    const options = { ...pacing.latencyBudget, initialDuty: 1 / (1 + pacing.niceRatio) }
    const signal = this.latency ? this.latency() : new DatabaseLatencySignal()
    const sink = runPacingSink(kind.label, run.id, pacing.latencyBudget.budgetRatio)
    return new LatencyPacer(this.clock, signal, options, sink, kind.logContext(run))
  }

  /** Reads the next batch after `cursor` and prepares it; null when the pass is done. */
  async #prepare<Run extends EngineRun, Row, Prepared>(
    kind: RunKind<Run, Row, Prepared>,
    run: Run,
    cursor: RunCursor,
    range: IdRange,
    limit: number,
    kmsOutageMs: number
  ): Promise<PreparedBatch<Row, Prepared> | null> {
    const batch = await kind.store.nextBatch(run, cursor, range, limit)
    if (!batch) return null
    const prepared = await this.#withKmsOutageBound(kind, run, kmsOutageMs, () =>
      kind.prepare(run, batch.rows)
    )
    return { rows: batch.rows, cursor: batch.cursor, prepared }
  }

  /**
   * The drivers already retry each request a bounded number of times; this
   * keeps trying through a longer KMS outage, up to `boundMs`.
   */
  async #withKmsOutageBound<Run extends EngineRun, T>(
    kind: RunKind<Run, any, any>,
    run: Run,
    boundMs: number,
    work: () => Promise<T>
  ): Promise<T> {
    const started = this.clock.now().getTime()
    for (let attempt = 1; ; attempt++) {
      try {
        return await work()
      } catch (error) {
        const elapsed = this.clock.now().getTime() - started
        if (errorCode(error) !== 'E_KMS_UNAVAILABLE' || elapsed >= boundMs) throw error
        logger.warn({ ...kind.logContext(run), attempt }, 'KMS unavailable; backing off')
        await this.clock.sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6), boundMs - elapsed))
      }
    }
  }
}
