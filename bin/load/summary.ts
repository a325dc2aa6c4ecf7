/*
|--------------------------------------------------------------------------
| The load run's printed figures
|--------------------------------------------------------------------------
*/
import type { PhaseStats } from './cannon.js'
import type { LoadOptions } from './options.js'

function line(stats: PhaseStats) {
  const l = stats.latencyMs
  return [
    stats.label.padEnd(9),
    `${stats.responses.toLocaleString().padStart(7)} responses`,
    `${String(stats.requestsPerSecond).padStart(6)} req/s`,
    `p50 ${l.p50} ms`,
    `p99 ${l.p99} ms`,
    `max ${l.max} ms`,
    `non-2xx ${stats.non2xx}`,
    `socket errors ${stats.socketErrors} (timeouts ${stats.timeouts})`,
  ].join('  ')
}

/** Prints both phases, the rotation and the verdict. */
export function printLoadSummary(
  options: LoadOptions,
  idle: PhaseStats,
  during: PhaseStats,
  rotation: { status: string; rewrapped: number; seconds: number; stopped: boolean },
  check: { totalRows: number; rowsBehind: number }
) {
  const out = [
    '',
    `Mix ${options.mix.reads}/${options.mix.writes}/${options.mix.updates} % reads/writes/updates, ${options.rate} req/s over ${options.connections} connections, seed ${options.seed}`,
    line(idle),
    line(during),
    `  built (reads/writes/updates): idle ${Object.values(idle.built).join('/')}, rotation ${Object.values(during.built).join('/')}`,
    `  status codes: idle ${JSON.stringify(idle.statusCodes)}, rotation ${JSON.stringify(during.statusCodes)}`,
    `Rotation: ${rotation.status}${rotation.stopped ? ' (stopped at --max-seconds)' : ''}, ${rotation.rewrapped?.toLocaleString()} rows rewrapped in ${rotation.seconds.toFixed(1)} s (${Math.round(rotation.rewrapped / rotation.seconds).toLocaleString()} rows/s, process boot included); ${check.totalRows.toLocaleString()} rows of the KEK, ${check.rowsBehind} below the latest version`,
    `[${during.failed === 0 ? 'PASS' : 'FAIL'}] zero failed requests during the rotation: ${during.failed} failed of ${during.responses + during.socketErrors}`,
    '',
  ]
  process.stdout.write(out.join('\n'))
}
