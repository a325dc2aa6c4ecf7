/*
|--------------------------------------------------------------------------
| Latency pacer (the latency budget wired to a run)
|--------------------------------------------------------------------------
|
| Gives the rewrap loop its duty (share of wall time it works) from the
| foreground's own request timings: the HTTP servers write them to
| `foreground_latencies` (request_latency_recorder.ts); the pacer reads
| the new ones at most every `pollMs` and feeds them to the pure AIMD
| controller (latency_budget.ts), which judges each window against the
| idle baseline: first from the requests served in the `baselineMs` before
| the run started (when no other run was paced then), else measured while
| the loop rests once the foreground shows traffic; and again, resting,
| every `rebaselineMs` (a foreground
| whose own latency drifts during a long run moves the budget with it);
| the loop does no work during that rest. Each judgement is written to
| `run_pacing` (one row per run): what /metrics shows, and how several
| workers of one distributed run share one duty: one of them judges, with
| this class, the others read the row (app/services/run_duty.ts).
|
| The clock is injected; the rest of a baseline is a bounded number of
| `pollMs` sleeps, so a test clock whose sleeps return at once never spins.
|
*/
import logger from '@adonisjs/core/services/logger'
import type { Clock } from '#services/clock'
import {
  observeLatencies,
  percentile,
  startBudget,
  type LatencyBudgetOptions,
  type LatencyBudgetState,
} from '#services/latency_budget'
import type { DutyPacer } from '#services/throttle'

/** Foreground request durations, as the loop observes them. */
export interface LatencySignal {
  /** Durations (ms) recorded since the previous call (the first call: none, it sets the mark). */
  read(): Promise<number[]>
  /**
   * Durations recorded in the `ms` that ended `endedMsAgo` before now (the
   * run's start: later rows hold requests its first batches slowed), or
   * null when they may not be idle (another run was paced meanwhile).
   * Optional.
   */
  recent?(ms: number, endedMsAgo: number): Promise<number[] | null>
}

/** Judged windows in a row at the floor duty before the baseline is measured again. */
export const STUCK_WINDOWS = 6

/** Settings of the pacer (config/rewrap.ts `rotation.latencyBudget`). */
export interface LatencyPacerOptions extends LatencyBudgetOptions {
  /** Read the signal at most this often, ms (≥ the servers' flush interval is enough). */
  pollMs: number
  /** Length of the rest that measures the idle baseline, ms. */
  baselineMs: number
  /** Measure the baseline again after this long, ms. */
  rebaselineMs: number
}

/** What a judgement leaves behind (logs, metrics, the run's row in `run_pacing`). */
export interface PacingSnapshot {
  duty: number
  /** p99 of the last judged window, ms (null: no foreground traffic in it). */
  p99Ms: number | null
  /** The idle baseline's p99, ms (null until measured). */
  baselineP99Ms: number | null
  /** How long ago the baseline was measured, ms (null until measured). */
  baselineAgeMs: number | null
  judgement: LatencyBudgetState['last']
}

/** Keeps a run's pacing state where other processes read it. */
export type PacingSink = (snapshot: PacingSnapshot) => Promise<void>

/**
 * What a judge of a run shared by several workers does around its baseline
 * rest (app/services/run_duty.ts): the other workers must rest with it.
 */
export interface RestHooks {
  /** Before the rest: every worker of the run rests for the next `ms`. */
  announce(ms: number): Promise<void>
  /** After each sleep of the rest (the judge renews its lease). */
  step(): Promise<void>
  /**
   * Extra time dropped at the start of the rest, ms: the other workers see
   * the announcement at their next poll and finish the batch in flight.
   */
  settleMs: number
}

/** A judge's state carried over from the run's row (another process judged before). */
export interface ResumedPacing {
  duty: number
  baselineP99Ms: number | null
  /** How long ago that baseline was measured, ms. */
  baselineAgeMs: number | null
}

/**
 * The duty of one run, judged from the foreground latency.
 */
export class LatencyPacer implements DutyPacer {
  #state: LatencyBudgetState
  #baseline: number | null = null
  #baselineAt: number
  #readAt = Number.NEGATIVE_INFINITY
  #slowing = false
  #triedHistory = false
  #startedAt: number
  #stuckWindows = 0

  constructor(
    private clock: Clock,
    private signal: LatencySignal,
    private options: LatencyPacerOptions,
    private sink: PacingSink | null = null,
    private logContext: Record<string, unknown> = {},
    private restHooks: RestHooks | null = null
  ) {
    this.#startedAt = clock.now().getTime()
    this.#state = startBudget(this.#startedAt, options)
    // The first baseline is taken once the foreground shows traffic (none: no rest at all).
    this.#baselineAt = this.#state.windowStartedAt
  }

  /** The share of wall time the loop may work now (1 = no rest). */
  get duty(): number {
    return this.#state.duty
  }

  /** The current state, for logs, metrics and tests. */
  snapshot(): PacingSnapshot {
    return {
      duty: this.#state.duty,
      p99Ms: this.#state.lastP99,
      baselineP99Ms: this.#baseline,
      baselineAgeMs:
        this.#baseline === null ? null : Math.max(0, this.clock.now().getTime() - this.#baselineAt),
      judgement: this.#state.last,
    }
  }

  /**
   * Continues where another judge of the run left off (its row): its duty
   * and, when known, its baseline and that baseline's age (measured again
   * once `rebaselineMs` old). The horizon starts empty.
   */
  resume(from: ResumedPacing): void {
    const duty = Math.min(this.options.maxDuty, Math.max(this.options.minDuty, from.duty))
    this.#state = { ...this.#state, duty }
    if (from.baselineP99Ms === null) return
    this.#baseline = from.baselineP99Ms
    this.#baselineAt = this.clock.now().getTime() - Math.max(0, from.baselineAgeMs ?? 0)
    this.#triedHistory = true
  }

  /**
   * After a batch (while other sessions use the database): takes the
   * baseline when due (resting), reads the new samples, judges the window
   * when it is over, and returns the duty.
   */
  async afterBatch(): Promise<number> {
    if (!this.#triedHistory) await this.#baselineFromHistory()
    if (this.clock.now().getTime() - this.#baselineAt >= this.options.rebaselineMs) {
      await this.#measureBaseline()
    }
    const now = this.clock.now().getTime()
    let samples: number[] = []
    if (now - this.#readAt >= this.options.pollMs) {
      this.#readAt = now
      samples = await this.#read()
    }
    if (this.#baseline === null) {
      // Traffic but no baseline yet (none while resting before): measure it at the next batch.
      if (samples.length >= this.options.minSamples) this.#baselineAt = Number.NEGATIVE_INFINITY
      samples = []
    }
    const before = this.#state
    this.#state = observeLatencies(before, samples, now, this.#baseline ?? 0, this.options)
    if (this.#state.windowStartedAt !== before.windowStartedAt) await this.#judged()
    return this.#state.duty
  }

  /**
   * The first baseline without a rest: the requests served in the
   * `baselineMs` before the run started (not up to now: the rows written
   * since hold requests its first batches slowed — the bench's baseline
   * read 6.3 ms that way against 3.7 ms idle), when no other run was paced
   * then.
   */
  async #baselineFromHistory() {
    this.#triedHistory = true
    let samples: number[] | null = null
    try {
      const sinceStart = Math.max(0, this.clock.now().getTime() - this.#startedAt)
      samples = (await this.signal.recent?.(this.options.baselineMs, sinceStart)) ?? null
    } catch {
      samples = null
    }
    if (!samples || samples.length < this.options.minSamples) return
    this.#baseline = percentile(samples, 99)
    this.#baselineAt = this.clock.now().getTime()
    logger.info(
      { ...this.logContext, baselineP99Ms: this.#baseline, samples: samples.length },
      'rewrap pacing: idle baseline from the requests served before the run'
    )
  }

  /**
   * Rests one baseline window and keeps the p99 of the requests served
   * meanwhile. Shared by several workers (`restHooks`): announced first, so
   * every worker rests with it, and the first `settleMs` more dropped.
   */
  async #measureBaseline() {
    const { pollMs } = this.options
    const steps = Math.max(1, Math.ceil(this.options.baselineMs / pollMs))
    const settleSteps = 1 + Math.ceil((this.restHooks?.settleMs ?? 0) / pollMs)
    await this.#hook(() => this.restHooks?.announce((settleSteps + steps) * pollMs))
    // Rows flushed in the first poll interval(s) hold requests served while the run worked.
    for (let i = 0; i < settleSteps; i++) {
      await this.clock.sleep(pollMs)
      await this.#hook(() => this.restHooks?.step())
    }
    await this.#read()
    const samples: number[] = []
    for (let i = 0; i < steps; i++) {
      await this.clock.sleep(pollMs)
      await this.#hook(() => this.restHooks?.step())
      samples.push(...(await this.#read()))
    }
    const now = this.clock.now().getTime()
    this.#baselineAt = now
    this.#readAt = now
    if (samples.length >= this.options.minSamples) {
      this.#baseline = percentile(samples, 99)
      logger.info(
        { ...this.logContext, baselineP99Ms: this.#baseline, samples: samples.length },
        'rewrap pacing: idle baseline measured'
      )
    }
    // The rest is not a window to judge, and the horizon's counts were against the old threshold.
    this.#state = { ...this.#state, windowStartedAt: now, samples: [], horizon: [] }
  }

  /** A rest hook's failure costs the other workers' rest at most; the run goes on. */
  async #hook(call: () => Promise<void> | undefined) {
    try {
      await call()
    } catch {
      // Nothing to do: the next poll or judgement writes the row again.
    }
  }

  async #read(): Promise<number[]> {
    try {
      return await this.signal.read()
    } catch {
      // No signal this time: the window holds fewer samples (a higher duty only when it stays so).
      return []
    }
  }

  /** A window was judged: keep the state; log when the direction switches. */
  async #judged() {
    // Held at the floor window after window: at that duty the run hardly touches the
    // foreground, so the baseline is the likelier culprit (a lucky, too-fast window);
    // measure it again now instead of at the next rebaselineMs.
    const stuck = this.#state.duty <= this.options.minDuty && this.#state.last !== 'faster'
    this.#stuckWindows = stuck ? this.#stuckWindows + 1 : 0
    if (this.#stuckWindows >= STUCK_WINDOWS && this.#baseline !== null) {
      this.#stuckWindows = 0
      this.#baselineAt = Number.NEGATIVE_INFINITY
    }
    const snapshot = this.snapshot()
    const slowing = snapshot.judgement === 'slower'
    if (slowing !== this.#slowing) {
      this.#slowing = slowing
      logger.info(
        { ...this.logContext, ...snapshot, slowShare: this.#state.slowShare },
        slowing
          ? 'rewrap pacing: foreground over its latency budget; backing off'
          : 'rewrap pacing: foreground within its latency budget; speeding up'
      )
    }
    try {
      await this.sink?.(snapshot)
    } catch {
      // Metrics lose one judgement; the run goes on.
    }
  }
}
