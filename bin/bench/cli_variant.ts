/*
|--------------------------------------------------------------------------
| The product process: `node ace rotate:kek <kek> --json` as a child
|--------------------------------------------------------------------------
*/
import type { Context } from './context.js'
import { idleWindow, slowest } from './foreground.js'
import type { ForegroundStats } from './load.js'
import { log } from './log.js'
import { measure } from './phase.js'
import { runAce } from './processes.js'
import { measurement, type Measurement } from './report.js'
import { round } from './sampler.js'
import { runSummary } from './variants.js'

/** The last line of `rotate:kek --json`. */
interface CliRun {
  status: string
  rewrapped: number
  skipped: number
  failed: number
  targetVersion: number
  startedAt: string
  finishedAt: string
}

/**
 * An idle window (only at full scale): the baseline of the foreground
 * latency target, taken right before or after the command.
 */
async function idleAround(ctx: Context, when: 'before' | 'after', full: boolean) {
  if (!full) return null
  log(`  idle foreground window ${when} rotate:kek (${ctx.options.idleSeconds} s)`)
  const idle = await idleWindow(ctx, when === 'before' ? 'idle-cli' : 'idle-after-cli')
  log(`    idle p50 ${idle?.p50Ms} ms, p99 ${idle?.p99Ms} ms`)
  return idle
}

/**
 * `node ace rotate:kek <kek> --json` as a child process: the real command,
 * its own peak RSS (VmHWM, app boot included) and its run's duration.
 */
export async function cliVariant(
  ctx: Context,
  scaleRows: number,
  full: boolean
): Promise<Measurement> {
  const nodeOptions = ctx.options.cliNodeOptions
  // An idle window right before (same table state, same moment of the machine's load): the
  // baseline of this variant's foreground-latency target.
  const idleBefore: ForegroundStats | null = await idleAround(ctx, 'before', full)
  log(
    `  cli: NODE_OPTIONS="${nodeOptions}" node ${ctx.cliEntry} rotate:kek --json (local KMS, own process, default throttle)`
  )
  const phase = await measure(ctx, 'cli', true, () =>
    runAce(
      ['rotate:kek', ctx.kekName, '--json', ...ctx.options.cliArgs],
      { NODE_OPTIONS: nodeOptions },
      { sampleRss: true, entry: ctx.cliEntry }
    )
  )
  // And one right after: a baseline that drifted during the run shows up as a gap between the two.
  const idleAfter: ForegroundStats | null = await idleAround(ctx, 'after', full)
  const r = phase.value
  const run = JSON.parse(r.stdout.trim().split('\n').pop()!) as CliRun
  if (run.status !== 'completed' || run.rewrapped !== scaleRows) {
    throw new Error(
      `rotate:kek ended ${run.status} with ${run.rewrapped}/${scaleRows} rows rewrapped`
    )
  }
  ctx.current = run.targetVersion
  const runSeconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000
  const m = measurement(
    'cli',
    'rotate:kek (CLI process, local)',
    scaleRows,
    run.rewrapped,
    runSeconds,
    phase,
    {
      run: runSummary(run as Parameters<typeof runSummary>[0]),
      entry: ctx.cliEntry,
      idleBefore,
      idleAfter,
      nodeOptions,
      args: ctx.options.cliArgs,
      processSeconds: round(r.seconds, 2),
      processPeakRssMb: r.peakRssMb === null ? null : round(r.peakRssMb, 1),
      walBytesPerRow:
        phase.resources.walBytes === null
          ? null
          : Math.round(phase.resources.walBytes / run.rewrapped),
    }
  )
  log(
    `    ${m.rowsPerSecond.toLocaleString()} rows/s, process peak RSS ${m.details.processPeakRssMb} MB`
  )
  log(`    slowest foreground requests (ms into the window: ms): ${slowest(phase.foreground)}`)
  return m
}
