/*
|--------------------------------------------------------------------------
| The workers rows: their shape, table, target, bound and projection
|--------------------------------------------------------------------------
|
| Apart from workers.ts (which imports app services once the app booted)
| so that the summary can print them. The formulas are those of
| docs/benchmarks.md "Workers".
|
*/
import type { TargetResult } from './report.js'

/** One measured row: one latency, one worker count (null = in-process rotate:kek). */
export interface WorkersRow {
  latencyMs: number
  workers: number | null
  rows: number
  /** Chunks of the run (null in-process). */
  chunks: number | null
  /** The run's own startedAt → finishedAt (Step A, planning and the workers' boot included). */
  runSeconds: number
  runRowsPerSecond: number
  /**
   * The window (rates and CPU are over it): from 10 % of the rows, or later
   * once every worker has taken a chunk (`windowFrom`, a share), to 90 %.
   */
  windowRows: number
  windowFrom: number
  windowSeconds: number
  rowsPerSecond: number
  /** CPU ms per row over the window. */
  cpuMsPerRow: {
    /** rotate:kek and its worker children. */
    rotate: number | null
    /** kms:serve. */
    kms: number | null
    /** Backends of the bench database. */
    pgBackends: number | null
    /** The server's background processes (WAL writer, checkpointer…; cluster-wide). */
    pgAux: number | null
  }
  /** Cores of the machine busy on average over the window (everything on it). */
  machineBusyCores: number | null
}

/** The workers section of a run. */
export interface WorkersResult {
  rows: WorkersRow[]
  cores: number
  /** Rows per batch = per KMS rewrap call (vault transit batches). */
  batchSize: number
  /** REWRAP_CPU_NICE of rotate:kek and its workers. */
  cpuNice: number
}

const TARGET_LATENCY = 20
const TARGET_WORKERS = 4
const TARGET_SPEEDUP = 3

function label(workers: number | null) {
  return workers === null ? 'in-process' : String(workers)
}

/** The 1-worker row at the same latency. */
function single(result: WorkersResult, latencyMs: number) {
  return result.rows.find((r) => r.latencyMs === latencyMs && r.workers === 1)
}

function speedUp(result: WorkersResult, row: WorkersRow): number | null {
  const one = single(result, row.latencyMs)
  return one ? row.rowsPerSecond / one.rowsPerSecond : null
}

/** Postgres CPU ms/row (backends + background processes). */
function pgMs(row: WorkersRow) {
  return (row.cpuMsPerRow.pgBackends ?? 0) + (row.cpuMsPerRow.pgAux ?? 0)
}

/** Cores the run itself kept busy: rows/s × CPU ms/row of each part. */
export function coresUsed(row: WorkersRow) {
  const c = row.cpuMsPerRow
  const cores = (ms: number | null) => (row.rowsPerSecond * (ms ?? 0)) / 1000
  const pg = cores(pgMs(row))
  const workers = cores(c.rotate)
  const kms = cores(c.kms)
  return { pg, workers, kms, total: pg + workers + kms }
}

/** KMS latency bound: one rewrap call (a batch) in flight per worker. */
export function latencyBound(result: WorkersResult, row: WorkersRow): number | null {
  if (row.latencyMs <= 0) return null
  return ((row.workers ?? 1) * result.batchSize * 1000) / row.latencyMs
}

const fmt = (v: number | null, digits = 3) => (v === null ? '–' : v.toFixed(digits))

/** The rows as a text table. */
export function workersTable(result: WorkersResult): string {
  const header = [
    'latency',
    'workers',
    'chunks',
    'window',
    'rows/s window',
    'rows/s run',
    'speed-up vs 1',
    'CPU ms/row workers',
    'kms',
    'pg backends',
    'pg bg',
    'our cores',
    'machine cores busy',
  ]
  const lines = result.rows.map((r) => {
    const s = speedUp(result, r)
    return [
      `${r.latencyMs} ms`,
      label(r.workers),
      r.chunks === null ? '–' : String(r.chunks),
      `${Math.round(r.windowFrom * 100)}→90%`,
      r.rowsPerSecond.toLocaleString(),
      r.runRowsPerSecond.toLocaleString(),
      s === null ? '–' : `${s.toFixed(2)}×`,
      fmt(r.cpuMsPerRow.rotate),
      fmt(r.cpuMsPerRow.kms),
      fmt(r.cpuMsPerRow.pgBackends),
      fmt(r.cpuMsPerRow.pgAux),
      coresUsed(r).total.toFixed(2),
      r.machineBusyCores === null ? '–' : `${r.machineBusyCores.toFixed(2)} of ${result.cores}`,
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(line)].join('\n')
}

/** CPU ms per row of everything the run needs (workers, KMS, Postgres). */
function totalMs(row: WorkersRow) {
  return (row.cpuMsPerRow.rotate ?? 0) + (row.cpuMsPerRow.kms ?? 0) + pgMs(row)
}

/** rows/s if every core of this host ran the run: cores × 1000 ÷ total CPU ms/row. */
export function hostCeiling(result: WorkersResult, row: WorkersRow): number | null {
  const ms = totalMs(row)
  return ms > 0 ? (result.cores * 1000) / ms : null
}

/** Which bound stopped a row, with numbers. */
export function boundOf(result: WorkersResult, row: WorkersRow): string {
  const used = coresUsed(row)
  const busy = row.machineBusyCores
  const others = busy === null ? null : Math.max(0, busy - used.total)
  const parts = `Postgres ${used.pg.toFixed(2)}, rotate+workers ${used.workers.toFixed(2)}, kms:serve ${used.kms.toFixed(2)}, other processes ${others === null ? '?' : others.toFixed(2)} cores`
  const latency = latencyBound(result, row)
  if (busy !== null && busy >= 0.9 * result.cores) {
    const biggest = [
      ['Postgres CPU', used.pg],
      ['worker CPU', used.workers],
      ['KMS CPU', used.kms],
      ["other processes' CPU (a shared machine)", others ?? 0],
    ].sort((x, y) => Number(y[1]) - Number(x[1]))[0][0]
    return `CPU: the machine was ${busy.toFixed(2)} of ${result.cores} cores busy (${parts}); the largest share: ${biggest}`
  }
  const ceiling = hostCeiling(result, row)
  if (ceiling !== null && row.rowsPerSecond >= 0.75 * ceiling) {
    return `CPU of this host: workers, KMS and Postgres share its ${result.cores} cores — ceiling ${result.cores} × 1000 ÷ ${totalMs(row).toFixed(3)} CPU ms/row = ${Math.round(ceiling).toLocaleString()} rows/s, reached at ${Math.round((row.rowsPerSecond / ceiling) * 100)}% (machine ${busy === null ? '?' : busy.toFixed(2)} cores busy: ${parts})`
  }
  if (latency !== null && row.rowsPerSecond >= 0.8 * latency) {
    return `KMS latency: ${row.rowsPerSecond.toLocaleString()} rows/s ≥ 80% of workers × batch ÷ latency = ${Math.round(latency).toLocaleString()} rows/s`
  }
  const chunks = row.chunks
  const imbalance =
    chunks !== null && row.workers !== null && chunks % row.workers !== 0
      ? `; ${chunks} chunks over ${row.workers} workers: the last round is partly idle`
      : ''
  const perBatch = (result.batchSize * (row.workers ?? 1) * 1000) / row.rowsPerSecond
  return `neither CPU (${busy === null ? '?' : busy.toFixed(2)} of ${result.cores} cores busy: ${parts}) nor KMS latency saturated: each worker's chain of round trips — ${perBatch.toFixed(0)} ms per batch of ${result.batchSize} (SELECT, KMS call of ${row.latencyMs} ms, UPDATE; the next batch's SELECT and KMS call overlap the UPDATE), and waits for a core${imbalance}`
}

/** Target: at 20 ms per KMS answer, 4 workers ≥ 3× the rows/s of 1 worker. */
export function workersTargets(result: WorkersResult): TargetResult[] {
  const target = `with ${TARGET_LATENCY} ms KMS latency, ${TARGET_WORKERS} workers ≥ ${TARGET_SPEEDUP}× the rows/s of 1 worker`
  const one = single(result, TARGET_LATENCY)
  const four = result.rows.find(
    (r) => r.latencyMs === TARGET_LATENCY && r.workers === TARGET_WORKERS
  )
  if (!one || !four) {
    return [{ target, measured: 'not measured in this run', pass: null }]
  }
  const ratio = four.rowsPerSecond / one.rowsPerSecond
  const pass = ratio >= TARGET_SPEEDUP
  const needs = (TARGET_SPEEDUP * one.rowsPerSecond * totalMs(four)) / 1000
  const measured = `${four.rowsPerSecond.toLocaleString()} vs ${one.rowsPerSecond.toLocaleString()} rows/s = ${ratio.toFixed(2)}×${pass ? '' : `; ${TARGET_SPEEDUP}× = ${(TARGET_SPEEDUP * one.rowsPerSecond).toLocaleString()} rows/s would need ${needs.toFixed(2)} cores at ${totalMs(four).toFixed(3)} CPU ms/row (this host: ${result.cores}); bound: ${boundOf(result, four)}`}`
  return [{ target, measured, pass }]
}

/** How long `rows` take at `rate` rows/s, in hours or minutes. */
function duration(rows: number, rate: number) {
  const h = rows / rate / 3600
  return h >= 1 ? `${h.toFixed(1)} h` : `${Math.round(h * 60)} min`
}

/**
 * Projection lines from the 1-worker row at the highest latency measured:
 * rate(N, D) = min(N × r₁, D × 1000 ÷ pg ms/row, quota × rows per call).
 */
export function workersProjection(result: WorkersResult): string[] {
  const latencies = [...new Set(result.rows.map((r) => r.latencyMs))].sort((a, b) => b - a)
  const one = latencies.map((l) => single(result, l)).find(Boolean)
  if (!one) return []
  const r1 = one.rowsPerSecond
  const pg = pgMs(one)
  const worker = one.cpuMsPerRow.rotate ?? 0
  const out = [
    `Projection from the 1-worker row at ${one.latencyMs} ms: r1 = ${r1.toLocaleString()} rows/s per worker, ` +
      `Postgres ${pg.toFixed(3)} CPU ms/row, worker ${worker.toFixed(3)} CPU ms/row (${((r1 * worker) / 1000).toFixed(2)} cores per worker at full speed)`,
    `  rate(N workers, D database cores) = min(N × r1, D × 1000 ÷ ${pg.toFixed(3)}, KMS quota × rows per call), the table cached (at 10⁸–10⁹ rows disk and WAL join)`,
  ]
  const quota = 10_000
  const host = hostCeiling(result, one)
  if (host !== null) {
    out.push(
      `  everything on one host of ${result.cores} cores (as here): ${result.cores} × 1000 ÷ ${totalMs(one).toFixed(3)} CPU ms/row (workers + KMS + Postgres) = ${Math.round(host).toLocaleString()} rows/s → 100 M rows ${duration(1e8, host)}, 1 B rows ${duration(1e9, host)}`
    )
  }
  for (const [n, d] of [
    [4, result.cores],
    [16, 4],
    [64, 16],
  ]) {
    const terms: Array<[string, number]> = [
      [`${n} × r1`, n * r1],
      [`${d} DB cores`, pg > 0 ? (d * 1000) / pg : Infinity],
      [
        `vault quota ${quota.toLocaleString()} req/s × ${result.batchSize}`,
        quota * result.batchSize,
      ],
    ]
    const [what, rate] = terms.sort((a, b) => a[1] - b[1])[0]
    out.push(
      `  N=${n}, D=${d}: ${Math.round(rate).toLocaleString()} rows/s (bound: ${what}) → 100 M rows ${duration(1e8, rate)}, 1 B rows ${duration(1e9, rate)}`
    )
  }
  out.push(
    `  AWS KMS (one ReEncrypt per row) capped at ${quota.toLocaleString()} req/s: ≤ ${quota.toLocaleString()} rows/s whatever N → 100 M rows ${duration(1e8, quota)}, 1 B rows ${duration(1e9, quota)}`
  )
  return out
}

/** The workers section of the printed summary: table, bounds, projection. */
export function printWorkers(out: string[], result: WorkersResult) {
  const rows = result.rows[0]?.rows ?? 0
  out.push(
    `\nWorkers: one rotation of ${rows.toLocaleString()} rows, vault driver → kms:serve with the latency added to every answer, rotate:kek --workers N --nice-ratio 0 (in-process: no --workers), REWRAP_CPU_NICE=${result.cpuNice}, full speed, no foreground load.`,
    `Rates and CPU over a window: from 10 % of the rows (or later, once every worker has taken a chunk: their boot left out) to 90 %; "rows/s run" over the run's startedAt → finishedAt (Step A, chunk planning and the workers' boot included). Batches of ${result.batchSize} rows (one KMS call each).`,
    workersTable(result),
    'Bounds:'
  )
  for (const r of result.rows) {
    out.push(`  ${r.latencyMs} ms, ${label(r.workers)}: ${boundOf(result, r)}`)
  }
  out.push(...workersProjection(result))
}
