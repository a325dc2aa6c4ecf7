/*
|--------------------------------------------------------------------------
| KMS quota bound: estimates for dry runs and status
|--------------------------------------------------------------------------
|
| A cloud KMS driver answers its requests/s budget as a rows/s ceiling
| (`rewrapRowsPerSecondCeiling`: AWS one ReEncrypt per row, Azure two
| calls). A run is quota-bound when that ceiling is lower than what the
| run would reach without it (the configured estimate, bounded by the
| run's own sleep and max rate): then the budget sets its pace and the
| ETA is at most that pace. Pure.
|
*/
import { formatDuration } from '#app/utils/duration'

/** The throttle settings an estimate depends on. */
export interface RateSettings {
  /** Rows/s assumed when nothing else bounds a run (rotation.estimateRowsPerSecond). */
  estimateRowsPerSecond: number
  batchSize: number
  sleepMs: number
  /** Rows/s cap of the run; 0: none. */
  maxRate: number
}

/**
 * Rows/s a run reaches before any KMS ceiling: the estimate, bounded by
 * one batch per sleep and by the run's max rate.
 */
export function unthrottledRowsPerSecond(settings: RateSettings): number {
  let rate = settings.estimateRowsPerSecond
  if (settings.sleepMs > 0) rate = Math.min(rate, (settings.batchSize * 1000) / settings.sleepMs)
  if (settings.maxRate > 0) rate = Math.min(rate, settings.maxRate)
  return rate
}

/** What status shows of the KMS's ceiling for a KEK. */
export interface QuotaStatus {
  /** The KMS's requests/s budget as rows/s; null when the driver has none. */
  rowsPerSecond: number | null
  /** True while a running run is held to that ceiling. */
  bound: boolean
  /** Seconds left for the running run at the pace it can keep (≤ the ceiling); null when none. */
  etaSeconds: number | null
  /** `quota-bound: ETA 2h 13m at the KMS's 100 rows/s`, or null. */
  summary: string | null
}

/**
 * The quota status of a KEK: `ceiling` from the driver, `running` the
 * progress and throttle of its running run (null when none).
 */
export function quotaStatus(
  ceiling: number | undefined,
  running: { left: number; rowsPerSecond: number; settings: RateSettings } | null
): QuotaStatus {
  const rowsPerSecond = ceiling !== undefined && ceiling > 0 ? ceiling : null
  if (rowsPerSecond === null || !running) {
    return { rowsPerSecond, bound: false, etaSeconds: null, summary: null }
  }
  if (rowsPerSecond >= unthrottledRowsPerSecond(running.settings)) {
    return { rowsPerSecond, bound: false, etaSeconds: null, summary: null }
  }
  const measured = running.rowsPerSecond
  const pace = measured > 0 ? Math.min(measured, rowsPerSecond) : rowsPerSecond
  const etaSeconds = Math.ceil(Math.max(0, running.left) / pace)
  return {
    rowsPerSecond,
    bound: true,
    etaSeconds,
    summary: `quota-bound: ETA ${formatDuration(etaSeconds * 1000)} at the KMS's ${rowsPerSecond} rows/s`,
  }
}
