/*
|--------------------------------------------------------------------------
| The end of a run: the printed summary and the JSON results
|--------------------------------------------------------------------------
*/
import type { BenchDatabase } from './database.js'
import { describeUrl } from './database.js'
import type { PostgresInfo } from './machine.js'
import { machineInfo } from './machine.js'
import { checkpoints } from './memory.js'
import type { BenchOptions } from './options.js'
import { table, writeJson, type TargetResult } from './report.js'
import type { ScaleResults } from './scales.js'
import { cloudTable, type CloudRow } from './cloud_report.js'
import { printWorkers, type WorkersResult } from './workers_report.js'

/** The text summary on stdout: both tables, the HOT passes, the targets. */
export function printSummary(
  options: BenchOptions,
  results: ScaleResults,
  targets: TargetResult[],
  cloud: CloudRow[],
  workers: WorkersResult | null = null
) {
  const { small, full } = results
  const out: string[] = []
  if (small.length) {
    out.push(`\nSmall scale: ${options.rssRows.toLocaleString()} rows`, table(small))
  }
  if (full.length) printScales(out, options, results)
  if (cloud.length) {
    out.push(
      '\nCloud drivers against their stand-ins (kms:serve --latency-ms), full speed, no foreground load:',
      cloudTable(cloud)
    )
  }
  if (workers) printWorkers(out, workers)
  out.push('\nTargets:')
  for (const t of targets)
    out.push(
      `  [${t.pass === null ? 'INFO' : t.pass ? 'PASS' : 'FAIL'}] ${t.target}: ${t.measured}`
    )
  process.stdout.write(out.join('\n') + '\n')
}

function printScales(out: string[], options: BenchOptions, results: ScaleResults) {
  const { full, idle, hot } = results
  out.push(`\nFull scale: ${options.rows.toLocaleString()} rows`, table(full))
  out.push(
    `* extrapolated from ${options.publishedRows.toLocaleString()} rows. ×floor: against the median floor pass of the same scale.`,
    `Idle foreground: p50 ${idle?.p50Ms} ms, p99 ${idle?.p99Ms} ms, ${idle?.failed} failed of ${idle?.sent} (${options.rate} req/s, ${options.concurrency} in flight at most).`,
    `Floor passes scramble the wraps of the rows they have passed until the return pass: their foreground failures are expected.`
  )
  if (hot) {
    out.push('\nHOT experiment (floor only, no foreground load):')
    for (const h of hot.passes) {
      out.push(
        `  ${h.table.padEnd(22)} pass ${h.pass}: ${h.rowsPerSecond.toLocaleString().padStart(8)} rows/s, ${String(h.walBytesPerRow).padStart(5)} WAL B/row, HOT ${h.hotShare === null ? '–' : `${Math.round(h.hotShare * 100)}%`}`
      )
    }
  }
}

/** Everything a run's JSON file holds besides its measurements. */
export interface RunInfo {
  startedAt: Date
  options: BenchOptions
  postgres: PostgresInfo
  database: BenchDatabase
  rotationDefaults: unknown
}

/** Writes the JSON results under `--out`; answers the file's path. */
export function writeResults(
  run: RunInfo,
  results: ScaleResults,
  targets: TargetResult[],
  cloud: CloudRow[],
  workers: WorkersResult | null = null
) {
  return writeJson(run.options.outDir, run.startedAt, {
    startedAt: run.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: run.options,
    machine: machineInfo(run.postgres),
    database: { source: run.database.source, server: describeUrl(run.database.url) },
    rotationDefaults: run.rotationDefaults,
    seedingSeconds: results.seeding,
    memoryCheckpoints: checkpoints,
    idle: results.idle,
    small: results.small,
    full: results.full,
    hot: results.hot,
    cloud,
    workers,
    targets,
  })
}
