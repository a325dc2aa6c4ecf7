/*
|--------------------------------------------------------------------------
| A distributed run's budget
|--------------------------------------------------------------------------
|
| The rows/s ceiling (`--max-rate`) is a budget of the whole run, not of
| each worker: a worker taking a chunk gets the ceiling divided by the
| chunks held under a live lease at that moment (its own included). Pure.
|
*/

/**
 * The rows/s ceiling of one chunk when `holders` chunks of the run share
 * `maxRate` (0 = no ceiling stays 0).
 */
export function shareOfRate(maxRate: number, holders: number): number {
  if (maxRate <= 0) return 0
  return Math.max(1, Math.floor(maxRate / Math.max(1, holders)))
}

/** What ends a pass: every row moved, only failed rows left (or no passes left), or a new pass. */
export type PassDecision = 'completed' | 'completed_with_errors' | 'next_pass'

/**
 * The remaining-rows decision after a pass (the same for a one-process run
 * and for a distributed run once all its chunks are done).
 */
export function passDecision(
  remaining: number,
  failedThisPass: number,
  pass: number,
  maxPasses: number
): PassDecision {
  if (remaining === 0) return 'completed'
  if (remaining <= failedThisPass || pass >= maxPasses) return 'completed_with_errors'
  return 'next_pass'
}
