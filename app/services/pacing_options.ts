/*
|--------------------------------------------------------------------------
| Pacing of a run: the latency budget or a fixed nice ratio
|--------------------------------------------------------------------------
|
| Resolves, from a run's flags, its stored options and config/rewrap.ts,
| how the run engine paces it. `--latency-budget` → the latency budget; an
| explicit `--nice-ratio` alone → the fixed ratio; neither → the run's own
| choice when it started (a resumed run keeps it), else `rotation.pacing`.
| Pure.
|
*/
import type { RewrapConfig } from '#config/rewrap'
import { DEFAULT_LATENCY_BUDGET } from '#services/latency_budget'
import type { LatencyPacerOptions } from '#services/latency_pacer'

/** How a run yields to the foreground while other sessions use the database. */
export type PacingMode = 'latency-budget' | 'nice-ratio'

/** A run's pacing flags (each optional). */
export interface PacingFlags {
  niceRatio?: number
  latencyBudget?: number
}

/** What a run row keeps of its pacing (`options` JSON). */
export interface StoredPacing {
  niceRatio?: unknown
  pacing?: unknown
  latencyBudget?: unknown
}

/** The pacing a new run stores in its options. */
export function pacingToStore(
  flags: PacingFlags,
  config: RewrapConfig['rotation']
): { pacing: PacingMode; latencyBudget: number } {
  return {
    pacing: modeOf(flags, {}, config),
    latencyBudget: flags.latencyBudget ?? config.latencyBudget.ratio,
  }
}

function modeOf(flags: PacingFlags, stored: StoredPacing, config: RewrapConfig['rotation']) {
  if (flags.latencyBudget !== undefined) return 'latency-budget'
  if (flags.niceRatio !== undefined) return 'nice-ratio'
  if (stored.pacing === 'latency-budget' || stored.pacing === 'nice-ratio') return stored.pacing
  return config.pacing
}

/**
 * The engine's `niceRatio` and `latencyBudget` (null = fixed ratio) of a
 * run. With the budget, the nice ratio only sets the starting duty.
 */
export function resolvePacing(
  flags: PacingFlags,
  stored: StoredPacing,
  config: RewrapConfig['rotation'],
  defaultNiceRatio: number
): { niceRatio: number; latencyBudget: LatencyPacerOptions | null } {
  const niceRatio = Number(flags.niceRatio ?? stored.niceRatio ?? defaultNiceRatio)
  if (modeOf(flags, stored, config) === 'nice-ratio') return { niceRatio, latencyBudget: null }
  const budget = config.latencyBudget
  return {
    niceRatio,
    latencyBudget: {
      ...DEFAULT_LATENCY_BUDGET,
      budgetRatio: Number(flags.latencyBudget ?? stored.latencyBudget ?? budget.ratio),
      initialDuty: 1 / (1 + niceRatio),
      minDuty: budget.minDuty,
      increase: budget.increase,
      decrease: budget.decrease,
      windowMs: budget.windowMs,
      minSamples: budget.minSamples,
      pollMs: budget.pollMs,
      baselineMs: budget.baselineMs,
      rebaselineMs: budget.rebaselineMs,
    },
  }
}
