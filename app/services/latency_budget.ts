/*
|--------------------------------------------------------------------------
| Latency budget controller (pacing by foreground latency)
|--------------------------------------------------------------------------
|
| Pure: no I/O, no clock of its own (every call takes `now`). Decides the
| share of wall time a background run may work (its duty) from the
| foreground's request latencies. The budget is "p99 ≤ budgetRatio × the
| idle baseline's p99", i.e. at most `tailShare` (1 %) of the requests may
| be slower than that threshold. The controller counts those slow requests
| — a count adds up across windows and workers, where a p99 of short windows
| does not: a window's p99 of a few hundred requests is its 2nd–4th slowest
| request, noisy, and a run's p99 is not an average of its windows' — over
| a horizon of recent windows, and aims at a set-point under the budget
| (`setPoint` × tailShare): under it, it speeds up by a step scaled by the
| headroom left (so it closes in instead of overshooting); past the budget,
| with the last window still slow (or one window at twice the budget's
| share), it backs off at once (multiplicative decrease) — the AIMD rule TCP uses to find a link's share. The fixed nice
| ratio is the special case of a constant duty (ratio r ⇔ duty 1 / (1 + r)).
|
*/

/** Settings of the controller. */
export interface LatencyBudgetOptions {
  /** The budget: foreground p99 ≤ budgetRatio × the idle baseline's p99 (default 1.2). */
  budgetRatio: number
  /** Duty to start from (share of wall time the loop works; 0.2 = nice ratio 4). */
  initialDuty: number
  /** Bounds of the duty. */
  minDuty: number
  maxDuty: number
  /** Added to the duty after a window within budget. */
  increase: number
  /** The duty is multiplied by this after a window over budget. */
  decrease: number
  /** Length of a judging window, ms. */
  windowMs: number
  /** Fewer samples than this in a window: no foreground to protect (a higher duty). */
  minSamples: number
  /** Share of requests the budget lets be slower than budgetRatio × baseline (p99 ⇒ 0.01). */
  tailShare: number
  /** Aim at this fraction of `tailShare` (a margin under the budget, for noise and lag). */
  setPoint: number
  /** Windows whose slow-request counts are judged together. */
  horizonWindows: number
}

/** Defaults: budget 1.2× idle, start at nice ratio 4, judge every 2 s. */
export const DEFAULT_LATENCY_BUDGET: LatencyBudgetOptions = {
  budgetRatio: 1.2,
  initialDuty: 0.2,
  minDuty: 0.05,
  maxDuty: 1,
  increase: 0.1,
  decrease: 0.5,
  windowMs: 2_000,
  minSamples: 20,
  tailShare: 0.01,
  setPoint: 0.8,
  horizonWindows: 6,
}

/** The controller's state (a plain value: every step returns a new one). */
export interface LatencyBudgetState {
  duty: number
  windowStartedAt: number
  samples: number[]
  /** The last judgement, for logs and metrics. */
  last: 'start' | 'hold' | 'faster' | 'slower'
  /** p99 of the last judged window, ms (null before the first). */
  lastP99: number | null
  /** Requests and slow requests (over the budget's threshold) of the last judged windows. */
  horizon: Array<{ requests: number; slow: number }>
  /** Share of slow requests over the horizon after the last judgement (null before). */
  slowShare: number | null
}

/** The p-th percentile (0–100) of `values`, nearest rank; null when empty. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

/** A fresh controller state at `now` (ms). */
export function startBudget(
  now: number,
  options: LatencyBudgetOptions = DEFAULT_LATENCY_BUDGET
): LatencyBudgetState {
  return {
    duty: clampDuty(options.initialDuty, options),
    windowStartedAt: now,
    samples: [],
    last: 'start',
    lastP99: null,
    horizon: [],
    slowShare: null,
  }
}

function clampDuty(duty: number, options: LatencyBudgetOptions): number {
  return Math.min(options.maxDuty, Math.max(options.minDuty, duty))
}

/**
 * Adds foreground request latencies (ms) and, once the window is over,
 * judges it against `baselineP99` (the idle p99, ms): the share of requests
 * slower than `budgetRatio` × baseline over the horizon under the
 * set-point → a higher duty; over the budget with this window still slow →
 * a lower one; between → hold. A window with fewer than `minSamples`
 * requests has no foreground to protect: a higher duty too (the database
 * signal, ForegroundDetector, still paces a run whose foreground is not the
 * HTTP API). Returns the new state.
 */
export function observeLatencies(
  state: LatencyBudgetState,
  samplesMs: number[],
  now: number,
  baselineP99: number,
  options: LatencyBudgetOptions = DEFAULT_LATENCY_BUDGET
): LatencyBudgetState {
  const samples = state.samples.concat(samplesMs.filter((ms) => Number.isFinite(ms) && ms >= 0))
  if (now - state.windowStartedAt < options.windowMs) return { ...state, samples }
  const fresh = { windowStartedAt: now, samples: [] as number[] }
  if (samples.length < options.minSamples) {
    // An idle (or nearly idle) foreground: nothing to protect; speed up.
    return {
      ...state,
      ...fresh,
      duty: clampDuty(state.duty + options.increase, options),
      last: 'faster',
      lastP99: null,
    }
  }
  const threshold = options.budgetRatio * baselineP99
  const slow = samples.filter((ms) => ms > threshold).length
  const horizon = state.horizon
    .concat({ requests: samples.length, slow })
    .slice(-Math.max(1, options.horizonWindows))
  const requests = horizon.reduce((sum, w) => sum + w.requests, 0)
  const share = horizon.reduce((sum, w) => sum + w.slow, 0) / requests
  const windowShare = slow / samples.length
  const target = options.tailShare * options.setPoint
  const judged = { ...state, ...fresh, horizon, slowShare: share, lastP99: percentile(samples, 99) }
  const spike = windowShare > 2 * options.tailShare
  if (spike || (share > options.tailShare && windowShare > target)) {
    return { ...judged, duty: clampDuty(state.duty * options.decrease, options), last: 'slower' }
  }
  if (share <= target && windowShare <= target) {
    // Under the set-point: speed up by the headroom still unused — of the slow-request
    // share and of the window's p99 below the threshold (baseline → threshold) — so the
    // duty closes in on the budget instead of overshooting it.
    const p99 = judged.lastP99!
    const p99Room = threshold > baselineP99 ? (threshold - p99) / (threshold - baselineP99) : 0
    const room = Math.min(target > 0 ? 1 - share / target : 0, Math.min(1, Math.max(0, p99Room)))
    const step = options.increase * room
    return {
      ...judged,
      duty: clampDuty(state.duty + step, options),
      last: step > 0 ? 'faster' : 'hold',
    }
  }
  return { ...judged, last: 'hold' }
}

/** How long to rest after working `busyMs` at `duty` (duty 1 = never rest). */
export function restAfter(busyMs: number, duty: number): number {
  if (duty >= 1) return 0
  return Math.ceil(Math.max(0, busyMs) * (1 / duty - 1))
}
