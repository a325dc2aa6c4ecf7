/*
|--------------------------------------------------------------------------
| One duty for a distributed run (its judge's lease on `run_pacing`)
|--------------------------------------------------------------------------
|
| The latency budget is a property of the run, not of a worker: the HTTP
| servers record every request whichever worker slows it, so one judge
| judges the whole run's effect and every worker paces by the duty it
| writes. The judge is whichever worker holds the lease on the run's
| `run_pacing` row (app/services/run_pacing_rows.ts):
|
| - at most every `pollMs` (after a batch, and between the sleeps of a
|   rest) each worker of the run looks at the row: the judge extends its
|   lease; any other reads the duty and `resting_until`, and takes the
|   lease (a compare-and-swap on the row, the database's clock) when
|   nobody holds it or it is past — a judge that died, was stopped or
|   hangs is replaced within `JUDGE_LEASE_POLLS` poll intervals;
| - the judge runs the one-process LatencyPacer, started from the row's
|   duty and baseline (it may take over from another judge); its
|   judgements are written only while it holds the lease (else it steps
|   down and follows);
| - before its baseline rest the judge sets `resting_until`: every worker
|   rests until then, so the baseline is the foreground without the run.
|
| The rest after a batch is the Throttle's (`busy × (1/duty − 1)`), the
| same for judge and followers. Chunks of one run worked at once by one
| process share its RunDuty (RunDuties); its steps run one at a time.
|
*/
import logger from '@adonisjs/core/services/logger'
import type { Clock } from '#services/clock'
import {
  LatencyPacer,
  type LatencyPacerOptions,
  type LatencySignal,
  type PacingSnapshot,
} from '#services/latency_pacer'
import type { PacingRow, RunPacingRows } from '#services/run_pacing_rows'
import type { DutyPacer } from '#services/throttle'

/** Poll intervals a judge's lease lasts without a renewal. */
export const JUDGE_LEASE_POLLS = 10

/** What one process needs to follow (or judge) one run. */
export interface RunDutyOptions {
  /** This process among the run's workers (unique per process start). */
  judgeId: string
  /** The run's row. */
  rows: RunPacingRows
  /** The pacer's settings (its `initialDuty` until the row says otherwise). */
  pacer: LatencyPacerOptions
  /** The foreground's latency, read while this process judges. */
  signal: () => LatencySignal
  logContext?: Record<string, unknown>
}

/**
 * The duty of one distributed run as one of its worker processes sees it.
 */
export class RunDuty implements DutyPacer {
  #judge: LatencyPacer | null = null
  #lost = false
  #duty: number
  #polledAt = Number.NEGATIVE_INFINITY
  #restSeen: string | null = null
  #restUntil = Number.NEGATIVE_INFINITY
  #tail: Promise<unknown> = Promise.resolve()

  constructor(
    private clock: Clock,
    private options: RunDutyOptions
  ) {
    this.#duty = options.pacer.initialDuty
  }

  /** The judge's lease, ms. */
  get leaseMs(): number {
    return JUDGE_LEASE_POLLS * this.options.pacer.pollMs
  }

  /** The run's duty as last judged here or read from the row. */
  get duty(): number {
    return this.#judge?.duty ?? this.#duty
  }

  /** True while this process judges the run. */
  get judging(): boolean {
    return this.#judge !== null
  }

  /** The judge's state (null while following), for logs and tests. */
  snapshot(): PacingSnapshot | null {
    return this.#judge?.snapshot() ?? null
  }

  /** After a batch while other sessions use the database: the run's duty now. */
  afterBatch(): Promise<number> {
    return this.#serial(async () => {
      await this.#poll()
      if (!this.#judge) return this.#duty
      const duty = await this.#judge.afterBatch()
      if (this.#lost) this.#stepDown('another worker judges now')
      return duty
    })
  }

  /**
   * Waits `ms` in sleeps of at most `pollMs`, looking at the row between
   * them, and longer while the run rests (its judge measures the baseline).
   * Bounded: by `ms` and by each announced rest as first seen (at most
   * a baseline rest).
   */
  async rest(ms: number): Promise<void> {
    const until = this.clock.now().getTime() + (Number.isFinite(ms) ? Math.max(0, ms) : 0)
    for (;;) {
      await this.#serial(() => this.#poll())
      const now = this.clock.now().getTime()
      const wait = Math.max(until, this.#restUntil) - now
      if (!(wait > 0)) return
      await this.clock.sleep(Math.min(wait, this.options.pacer.pollMs))
    }
  }

  /** Gives the lease up when held (this process stops): the next worker to look judges. */
  async release(): Promise<void> {
    await this.#serial(async () => {
      if (!this.#judge) return
      this.#stepDown('worker stopping')
      await this.options.rows.release(this.options.judgeId).catch(() => {})
    })
  }

  /** Runs `step` after the ones before it (the chunks of one process share this object). */
  #serial<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(step)
    this.#tail = next.catch(() => {})
    return next
  }

  /** At most every `pollMs`: renew the lease, or read the row and take a free or past lease. */
  async #poll() {
    const now = this.clock.now().getTime()
    if (now - this.#polledAt < this.options.pacer.pollMs) return
    this.#polledAt = now
    const { rows, judgeId } = this.options
    try {
      if (this.#judge) {
        if (await rows.renew(judgeId, this.leaseMs)) return
        this.#stepDown('another worker judges now')
      }
      let row = await rows.read()
      const free =
        !row || row.judgeId === null || row.judgeId === judgeId || (row.judgeLeftMs ?? 0) <= 0
      if (free) {
        const claimed = await rows.claim(judgeId, this.leaseMs, this.#duty)
        if (claimed) return this.#stepUp(claimed, row?.judgeId ?? null)
        row = await rows.read()
      }
      if (row) this.#follow(row)
    } catch {
      // The database did not answer: keep the last duty (and rest); look again next poll.
    }
  }

  /** A follower's view of the row: the duty, and a rest the judge announced. */
  #follow(row: PacingRow) {
    const { minDuty, maxDuty } = this.options.pacer
    // Within the pacer's bounds whatever the row holds (a duty of 0 would never work again).
    if (Number.isFinite(row.duty)) this.#duty = Math.min(maxDuty, Math.max(minDuty, row.duty))
    if (row.restingUntil !== this.#restSeen) {
      this.#restSeen = row.restingUntil
      const left = Number.isFinite(row.restLeftMs) ? Math.max(0, row.restLeftMs) : 0
      this.#restUntil = this.clock.now().getTime() + Math.min(left, this.#longestRest())
    }
  }

  /**
   * The longest rest a judge announces (settle + baseline, in whole polls)
   * and a margin: a row saying more (a judge configured otherwise, a hand
   * edit) never stops the run for longer.
   */
  #longestRest(): number {
    return this.options.pacer.baselineMs + 4 * this.options.pacer.pollMs
  }

  /** This process judges from now on, from where the row says the run is. */
  #stepUp(row: PacingRow, previous: string | null) {
    const { rows, judgeId, pacer } = this.options
    const lose = (held: boolean) => {
      if (!held) this.#lost = true
    }
    this.#lost = false
    this.#judge = new LatencyPacer(
      this.clock,
      this.options.signal(),
      pacer,
      async (snapshot) => lose(await rows.judge(judgeId, this.leaseMs, snapshot)),
      this.options.logContext,
      {
        announce: async (ms) => lose(await rows.announceRest(judgeId, this.leaseMs, ms)),
        step: async () => lose(await rows.renew(judgeId, this.leaseMs)),
        // The others see the announcement at their next poll, then end the batch in flight.
        settleMs: pacer.pollMs,
      }
    )
    this.#judge.resume(row)
    this.#restSeen = row.restingUntil
    logger.info(
      { ...this.options.logContext, judge: judgeId, previous, duty: row.duty },
      'rewrap pacing: this worker judges the run’s latency budget'
    )
  }

  #stepDown(why: string) {
    if (!this.#judge) return
    this.#duty = this.#judge.duty
    this.#judge = null
    this.#lost = false
    logger.info(
      { ...this.options.logContext, judge: this.options.judgeId },
      `rewrap pacing: ${why}`
    )
  }
}

/**
 * The RunDuty of each run this process works chunks of: the chunks of one
 * run share one (its judge's state outlives a chunk; the next chunk goes
 * on from it).
 */
export class RunDuties {
  #entries = new Map<string, { duty: RunDuty; users: number }>()

  constructor(
    /** This process among the workers of every run. */
    readonly judgeId: string,
    private make: (
      kind: string,
      runId: string,
      budgetRatio: number
    ) => Pick<RunDutyOptions, 'rows' | 'signal'>
  ) {}

  /** The run's RunDuty for one more chunk of it (give it back with `release`). */
  acquire(
    clock: Clock,
    kind: string,
    runId: string,
    pacer: LatencyPacerOptions,
    logContext: Record<string, unknown> = {}
  ): RunDuty {
    const key = `${kind}:${runId}`
    let entry = this.#entries.get(key)
    if (!entry) {
      // Runs this process no longer works: their state goes (a judge's lease runs out).
      for (const [other, e] of this.#entries) if (e.users === 0) this.#entries.delete(other)
      const options = {
        ...this.make(kind, runId, pacer.budgetRatio),
        judgeId: this.judgeId,
        pacer,
        logContext,
      }
      entry = { duty: new RunDuty(clock, options), users: 0 }
      this.#entries.set(key, entry)
    }
    entry.users++
    return entry.duty
  }

  /**
   * A chunk is over. Kept while the process lives: the next chunk of the
   * run goes on with it. A stopping process gives a judge's lease up.
   */
  async release(duty: RunDuty, stopping: boolean): Promise<void> {
    for (const entry of this.#entries.values()) {
      if (entry.duty !== duty) continue
      entry.users = Math.max(0, entry.users - 1)
      if (entry.users === 0 && stopping) await duty.release()
    }
  }
}
