import type { Clock } from '#services/clock'
import { restAfter } from '#services/latency_budget'

/** Limits of the rewrap loop's pacing (each 0 = off). */
export interface ThrottleLimits {
  /** Fixed sleep after every batch, ms (`--sleep-ms`, the published behaviour). */
  sleepMs: number
  /** Rows/s ceiling (`--max-rate`). */
  maxRate: number
  /**
   * While the database serves other work (see ForegroundDetector), sleep
   * `niceRatio` × the time the last batch took (`--nice-ratio`): the loop
   * then keeps at most 1 / (1 + niceRatio) of the wall time.
   */
  niceRatio: number
}

/** Tells whether other work is using the database right now. */
export interface ForegroundSignal {
  /** True while other sessions are active (the loop should yield). */
  active(): Promise<boolean>
}

/**
 * Gives the loop its duty while other sessions use the database: a run's
 * own LatencyPacer, or a distributed run's worker following the run-wide
 * duty (app/services/run_duty.ts).
 */
export interface DutyPacer {
  /** The share of wall time the loop may work now (1 = no rest). */
  readonly duty: number
  /** After a batch while other sessions use the database: the duty now. */
  afterBatch(): Promise<number>
  /**
   * Waits `ms` (0: none) after every batch instead of a plain sleep, and
   * longer while the run as a whole rests (optional).
   */
  rest?(ms: number): Promise<void>
}

/**
 * Paces the rewrap loop after every batch: the fixed sleep, the rows/s
 * ceiling and, while there is foreground work, either the latency budget
 * (a DutyPacer's duty: rest `busy × (1/duty − 1)`) or the fixed nice
 * ratio — whichever asks for the longest wait.
 */
export class Throttle {
  #startedAt: number
  #lastWake: number
  #rows = 0
  /** Whether the last batch was paced by the nice ratio (for logs and tests). */
  paced = false

  constructor(
    private clock: Clock,
    private limits: ThrottleLimits,
    private foreground: ForegroundSignal | null = null,
    private pacer: DutyPacer | null = null
  ) {
    this.#startedAt = clock.now().getTime()
    this.#lastWake = this.#startedAt
  }

  /**
   * Milliseconds to wait after a batch of `rows` that took `busyMs`, with or
   * without foreground work (pure apart from the rate bookkeeping).
   */
  delayAfter(rows: number, busyMs = 0, foreground = false): number {
    this.#rows += rows
    let delay = Math.max(0, this.limits.sleepMs)
    if (this.limits.maxRate > 0) {
      const earliest = this.#startedAt + (this.#rows / this.limits.maxRate) * 1000
      delay = Math.max(delay, earliest - this.clock.now().getTime())
    }
    if (foreground && this.limits.niceRatio > 0) {
      delay = Math.max(delay, busyMs * this.limits.niceRatio)
    }
    return Math.ceil(delay)
  }

  /**
   * Rows of the next batch: `full` at full speed; while paced by the nice
   * ratio `paced`, by the latency budget between the two in proportion to
   * the duty (longer bursts as the budget allows).
   */
  batchSize(full: number, paced: number): number {
    if (!this.paced) return full
    if (!this.pacer) return paced
    return Math.max(1, Math.round(paced + (full - paced) * Math.min(1, this.pacer.duty)))
  }

  /**
   * Waits as long as the limits require after a batch (its time is counted
   * from the end of the previous wait).
   */
  async afterBatch(rows: number) {
    const busyMs = this.clock.now().getTime() - this.#lastWake
    const pacing = this.pacer !== null || this.limits.niceRatio > 0
    const foreground = pacing && this.foreground !== null && (await this.foreground.active())
    let delay: number
    if (this.pacer) {
      const duty = foreground ? await this.pacer.afterBatch() : 1
      this.paced = duty < 1
      delay = Math.max(this.delayAfter(rows, busyMs, false), restAfter(busyMs, duty))
    } else {
      this.paced = foreground
      delay = this.delayAfter(rows, busyMs, this.paced)
    }
    if (this.pacer?.rest) await this.pacer.rest(delay)
    else if (delay > 0) await this.clock.sleep(delay)
    this.#lastWake = this.clock.now().getTime()
  }
}
