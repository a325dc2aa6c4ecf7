/*
| The `run_pacing` row of one run in memory, timed by a test clock (its `t`
| plays the database's `now()`), with the same compare-and-swap rules as
| DatabasePacingRows (app/services/run_pacing_rows.ts).
*/
import type { PacingSnapshot } from '#services/latency_pacer'
import type { PacingRow, RunPacingRows } from '#services/run_pacing_rows'
import type { FakeClock } from '#tests/helpers/clock'

/** The stored row (times in the clock's ms). */
export interface StoredPacing {
  duty: number
  judgeId: string | null
  judgeUntil: number | null
  restingUntil: number | null
  baselineP99Ms: number | null
  baselineAt: number | null
  judgedAt: number | null
}

/** One run's row; `row` may be set or changed by the test (another judge). */
export class MemoryPacingRows implements RunPacingRows {
  row: StoredPacing | null = null
  /** Calls of `read` (how often followers look). */
  reads = 0
  /** Rests announced: when, and for how long. */
  announced: Array<{ at: number; ms: number }> = []

  constructor(private clock: FakeClock) {}

  /** A live judge other than the workers under test holds the row at `duty`. */
  judgedBy(judgeId: string, duty: number, leaseMs = 3_600_000): this {
    this.row = {
      duty,
      judgeId,
      judgeUntil: this.clock.t + leaseMs,
      restingUntil: null,
      baselineP99Ms: null,
      baselineAt: null,
      judgedAt: this.clock.t,
    }
    return this
  }

  #view(r: StoredPacing): PacingRow {
    const now = this.clock.t
    return {
      duty: r.duty,
      judgeId: r.judgeId,
      judgeLeftMs: r.judgeUntil === null ? null : r.judgeUntil - now,
      restingUntil: r.restingUntil === null ? null : String(r.restingUntil),
      restLeftMs: r.restingUntil === null ? 0 : Math.max(0, r.restingUntil - now),
      baselineP99Ms: r.baselineP99Ms,
      baselineAgeMs: r.baselineAt === null ? null : now - r.baselineAt,
    }
  }

  async read() {
    this.reads++
    return this.row ? this.#view(this.row) : null
  }

  async claim(judgeId: string, leaseMs: number, duty: number) {
    const now = this.clock.t
    if (!this.row) {
      this.row = {
        duty,
        judgeId,
        judgeUntil: now + leaseMs,
        restingUntil: null,
        baselineP99Ms: null,
        baselineAt: null,
        judgedAt: null,
      }
      return this.#view(this.row)
    }
    const r = this.row
    const free =
      r.judgeId === null || r.judgeId === judgeId || r.judgeUntil === null || r.judgeUntil <= now
    if (!free) return null
    r.judgeId = judgeId
    r.judgeUntil = now + leaseMs
    return this.#view(r)
  }

  #mine(judgeId: string): StoredPacing | null {
    return this.row && this.row.judgeId === judgeId ? this.row : null
  }

  async renew(judgeId: string, leaseMs: number) {
    const r = this.#mine(judgeId)
    if (r) r.judgeUntil = this.clock.t + leaseMs
    return r !== null
  }

  async judge(judgeId: string, leaseMs: number, s: PacingSnapshot) {
    const r = this.#mine(judgeId)
    if (!r) return false
    Object.assign(r, {
      duty: s.duty,
      baselineP99Ms: s.baselineP99Ms,
      baselineAt: s.baselineAgeMs === null ? null : this.clock.t - s.baselineAgeMs,
      judgedAt: this.clock.t,
      judgeUntil: this.clock.t + leaseMs,
    })
    return true
  }

  async announceRest(judgeId: string, leaseMs: number, restMs: number) {
    const r = this.#mine(judgeId)
    if (!r) return false
    this.announced.push({ at: this.clock.t, ms: restMs })
    r.restingUntil = this.clock.t + restMs
    r.judgeUntil = this.clock.t + leaseMs
    return true
  }

  async release(judgeId: string) {
    const r = this.#mine(judgeId)
    if (!r) return
    r.judgeUntil = this.clock.t
    if (r.restingUntil !== null && r.restingUntil > this.clock.t) r.restingUntil = this.clock.t
  }
}
