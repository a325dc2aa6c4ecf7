/*
|--------------------------------------------------------------------------
| The cloud-driver rows: their shape, table and targets
|--------------------------------------------------------------------------
|
| Apart from cloud.ts (which imports app services once the app booted) so
| that the summary can print them.
|
*/
import type { TargetResult } from './report.js'
import type { StepTimings } from './variants.js'

/** The two cloud drivers. */
export type CloudDriverName = 'aws-kms' | 'azure-keyvault'

/** One measured cloud row. */
export interface CloudRow {
  driver: CloudDriverName
  /** Latency the stand-in adds to every answer, ms. */
  latencyMs: number
  concurrency: number
  /** The driver's requests/s ceiling (0: none). */
  requestsPerSecond: number
  /** True for the driver's own defaults (config/kms.ts). */
  defaults: boolean
  callsPerRow: number
  rows: number
  seconds: number
  rowsPerSecond: number
  /** concurrency ÷ (calls per row × latency), rows/s. */
  concurrencyBound: number
  /** ceiling ÷ calls per row, rows/s; null without a ceiling. */
  ceilingBound: number | null
  /** The lower of the two. */
  bound: number
  /** rowsPerSecond ÷ bound. */
  ofBound: number
  /** Summed time of the SELECTs, KMS calls and UPDATEs (they overlap). */
  timings: StepTimings
  /** Bench process CPU seconds, and the stand-in's. */
  cpuSeconds: { bench: number | null; standIn: number | null }
}

function perRow(seconds: number | null, rows: number) {
  return seconds === null ? '–' : ((seconds * 1000) / rows).toFixed(2)
}

/** The cloud rows as a text table. */
export function cloudTable(rows: CloudRow[]): string {
  const header = [
    'driver',
    'latency',
    'concurrency',
    'ceiling req/s',
    'rows',
    'rows/s',
    'bound rows/s',
    '% of bound',
    'client CPU ms/row',
    'stand-in CPU ms/row',
  ]
  const lines = rows.map((r) => [
    r.driver + (r.defaults ? ' (defaults)' : ''),
    `${r.latencyMs} ms`,
    String(r.concurrency),
    r.requestsPerSecond ? r.requestsPerSecond.toLocaleString() : 'none',
    r.rows.toLocaleString(),
    r.rowsPerSecond.toLocaleString(),
    `${r.bound.toLocaleString()} (${r.ceilingBound !== null && r.ceilingBound <= r.concurrencyBound ? 'ceiling' : 'concurrency'})`,
    `${Math.round(r.ofBound * 100)}%`,
    perRow(r.cpuSeconds.bench, r.rows),
    perRow(r.cpuSeconds.standIn, r.rows),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)].join('\n')
}

/** Target: each row at ≥ 80 % of its bound. */
export function cloudTargets(rows: CloudRow[]): TargetResult[] {
  return rows.map((r) => ({
    target: `${r.driver}${r.defaults ? ' (defaults)' : ''} at ${r.latencyMs} ms per call ≥ 80% of min(concurrency ÷ (${r.callsPerRow} × latency), ceiling ÷ ${r.callsPerRow})`,
    measured: `${r.rowsPerSecond.toLocaleString()} rows/s = ${Math.round(r.ofBound * 100)}% of ${r.bound.toLocaleString()} (concurrency ${r.concurrency}, ceiling ${r.requestsPerSecond || 'none'} req/s)`,
    pass: r.ofBound >= 0.8,
  }))
}
