/*
|--------------------------------------------------------------------------
| The targets (docs/benchmarks.md) and their verdicts
|--------------------------------------------------------------------------
*/
import type { ForegroundStats } from './load.js'
import type { Measurement, TargetResult } from './report.js'
import { round } from './sampler.js'

/**
 * Judges the targets on a run's measurements: `idle` is the first idle
 * window, `floorFull` the median full-scale floor pass (rows/s).
 */
export function evaluateTargets(
  full: Measurement[],
  small: Measurement[],
  idle: ForegroundStats | null,
  floorFull: number | null
): TargetResult[] {
  const pct = (v: number) => `${(v * 100).toFixed(0)}%`
  const targets: TargetResult[] = []
  const local = full.find((m) => m.key === 'local')
  const vault = full.find((m) => m.key === 'vault')
  if (local && floorFull) {
    targets.push({
      target: 'Rewrap local ≥ 50% of the floor (rows/s)',
      measured: `${local.rowsPerSecond.toLocaleString()} rows/s = ${pct(local.vsFloor!)} of ${Math.round(floorFull).toLocaleString()}`,
      pass: local.vsFloor! >= 0.5,
    })
  }
  if (vault && floorFull) {
    targets.push({
      target: 'Rewrap vault ≥ 25% of the floor (rows/s)',
      measured: `${vault.rowsPerSecond.toLocaleString()} rows/s = ${pct(vault.vsFloor!)} of ${Math.round(floorFull).toLocaleString()}`,
      pass: vault.vsFloor! >= 0.25,
    })
  }
  const peaks = (list: Measurement[]) =>
    list.filter((m) => m.key === 'local' || m.key === 'vault').map((m) => m.resources.peakRssMb)
  const fullPeak = Math.max(...peaks(full))
  if (small.length) {
    const smallPeak = Math.max(...peaks(small))
    const growth = fullPeak - smallPeak
    targets.push({
      target:
        'In-process rotations: peak RSS of the bench process, small → full scale (the product process is the rotate:kek line)',
      measured: `${smallPeak} MB at ${small[0].scaleRows.toLocaleString()} rows → ${fullPeak} MB at ${full[0].scaleRows.toLocaleString()} rows (${growth >= 0 ? '+' : ''}${round(growth, 1)} MB; bench process under the TS loader)`,
      pass: null,
    })
  }
  const cli = full.find((m) => m.key === 'cli')
  const cliPeak = (list: Measurement[]) =>
    list.find((m) => m.key === 'cli')?.details.processPeakRssMb as number | null | undefined
  const cliFull = cliPeak(full)
  const cliSmall = cliPeak(small)
  if (cliFull !== null && cliFull !== undefined) {
    const growth = cliSmall === null || cliSmall === undefined ? null : cliFull - cliSmall
    targets.push({
      target: `Peak RSS of the \`rotate:kek\` process (${cli?.details.entry}, NODE_OPTIONS="${cli?.details.nodeOptions}", VmHWM, boot included) ≤ 200 MB and flat (≤ +25 MB)`,
      measured:
        growth === null
          ? `${cliFull} MB at ${full[0].scaleRows.toLocaleString()} rows`
          : `${cliSmall} MB at ${small[0].scaleRows.toLocaleString()} rows → ${cliFull} MB at ${full[0].scaleRows.toLocaleString()} rows (${growth >= 0 ? '+' : ''}${round(growth, 1)} MB)`,
      pass: cliFull <= 200 && (cliSmall ?? 0) <= 200 && (growth === null || growth <= 25),
    })
  }
  const ratioOf = (fg: ForegroundStats) => fg.p99Ms! / idle!.p99Ms!
  const idleBefore = cli?.details.idleBefore as ForegroundStats | null | undefined
  const idleAfter = cli?.details.idleAfter as ForegroundStats | null | undefined
  if (cli?.foreground?.p99Ms && idleBefore?.p99Ms) {
    const fg = cli.foreground
    const ratio = fg.p99Ms! / idleBefore.p99Ms
    targets.push({
      target:
        'Foreground p99 during `rotate:kek` with the default throttle ≤ 1.5× idle (the idle window just before it)',
      measured: `${fg.p99Ms} ms vs ${idleBefore.p99Ms} ms idle (${ratio.toFixed(2)}×; ${[
        idleAfter?.p99Ms
          ? `${(fg.p99Ms! / idleAfter.p99Ms).toFixed(2)}× the idle window right after (${idleAfter.p99Ms} ms)`
          : null,
        idle?.p99Ms ? `${ratioOf(fg).toFixed(2)}× the first idle window` : null,
      ]
        .filter(Boolean)
        .join(', ')}) at ${cli.rowsPerSecond.toLocaleString()} rows/s`,
      pass: ratio <= 1.5,
    })
  }
  if (cli && local && cli.rowsPerSecond > 0 && local.rowsPerSecond > 0) {
    const share = cli.rowsPerSecond / local.rowsPerSecond
    targets.push({
      target:
        '`rotate:kek` with the default throttle (latency budget) under the foreground load ≥ 30% of the full-speed rows/s (Rewrap, local KMS, same run)',
      measured: `${cli.rowsPerSecond.toLocaleString()} rows/s = ${pct(share)} of ${local.rowsPerSecond.toLocaleString()}`,
      pass: share >= 0.3,
    })
  }
  if (cli?.foreground?.p99Ms && idleBefore?.p99Ms) {
    const ratio = cli.foreground.p99Ms / idleBefore.p99Ms
    targets.push({
      target:
        'Foreground p99 during that `rotate:kek` ≤ 1.2× idle (the latency budget; the idle window just before it)',
      measured: `${cli.foreground.p99Ms} ms vs ${idleBefore.p99Ms} ms idle (${ratio.toFixed(2)}×)`,
      pass: ratio <= 1.2,
    })
  }
  for (const m of [cli, local]) {
    if (!m?.foreground) continue
    targets.push({
      target: `Zero failed foreground requests during ${m.key === 'cli' ? '`rotate:kek` (default throttle)' : 'the full-speed local rotation'}`,
      measured: `${m.foreground.failed} failed of ${m.foreground.sent} (${m.foreground.skipped} not sent: concurrency limit)`,
      pass: m.foreground.failed === 0,
    })
  }
  if (local?.foreground?.p99Ms && idle?.p99Ms) {
    targets.push({
      target: 'Foreground p99 during the full-speed local rotation (--nice-ratio 0)',
      measured: `${local.foreground.p99Ms} ms vs ${idle.p99Ms} ms idle (${ratioOf(local.foreground).toFixed(2)}×)`,
      pass: null,
    })
  }
  return targets
}
