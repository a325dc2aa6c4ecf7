/*
|--------------------------------------------------------------------------
| Latency budget controller (pacing by foreground latency)
|--------------------------------------------------------------------------
|
| Pure: no I/O, no clock of its own (every call takes `now`). Decides the
| share of wall time a background run may work (its duty) from the
| foreground's request latencies: while the p99 of the last window stays
| within `budgetRatio` × the idle baseline it speeds up (an additive step
| scaled by the headroom left, so it closes in on the budget instead of
| overshooting it), and when the budget is broken it backs off at once
| (multiplicative decrease) — the AIMD rule TCP uses to find a link's
| share. The fixed nice ratio is the special case of a constant duty
| (nice ratio r ⇔ duty 1 / (1 + r)).
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
  /** Fewer samples than this in a window: no judgement (hold the duty). */
  minSamples: number
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
  }
}

function clampDuty(duty: number, options: LatencyBudgetOptions): number {
  return Math.min(options.maxDuty, Math.max(options.minDuty, duty))
}

/**
 * Adds foreground request latencies (ms) and, once the window is over,
 * judges it against `baselineP99` (the idle p99, ms): within budget → a
 * higher duty, over → a lower one. A window with fewer than `minSamples`
 * requests has no foreground to protect: a higher duty too (the database
 * signal, ForegroundDetector, still paces a run whose foreground is not
 * the HTTP API). Returns the new state.
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
  const p99 = percentile(samples, 99)!
  const budget = options.budgetRatio * baselineP99
  if (p99 <= budget) {
    // Within budget: speed up by the share of the headroom (baseline → budget) still
    // unused, so the duty closes in on the budget instead of overshooting it.
    const headroom = budget > baselineP99 ? (budget - p99) / (budget - baselineP99) : 0
    const step = options.increase * Math.min(1, Math.max(0, headroom))
    return {
      ...state,
      ...fresh,
      duty: clampDuty(state.duty + step, options),
      last: step > 0 ? 'faster' : 'hold',
      lastP99: p99,
    }
  }
  return {
    ...state,
    ...fresh,
    duty: clampDuty(state.duty * options.decrease, options),
    last: 'slower',
    lastP99: p99,
  }
}

/** How long to rest after working `busyMs` at `duty` (duty 1 = never rest). */
export function restAfter(busyMs: number, duty: number): number {
  if (duty >= 1) return 0
  return Math.ceil(Math.max(0, busyMs) * (1 / duty - 1))
}
