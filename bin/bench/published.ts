/*
|--------------------------------------------------------------------------
| The published algorithm (per-row rewrap + UPDATE), on a subset, extrapolated
|--------------------------------------------------------------------------
*/
import type { Context } from './context.js'
import { log } from './log.js'
import { measure } from './phase.js'
import { measurement, type Measurement } from './report.js'
import { round } from './sampler.js'
import { runPublished } from './variants.js'

/**
 * Rotates the KEK (untimed), then runs the published algorithm on
 * `--published-rows` rows with the app's local driver; its time is
 * extrapolated to `scaleRows`.
 */
export async function publishedVariant(ctx: Context, scaleRows: number): Promise<Measurement> {
  const rotated = await ctx.local.rotateKey(ctx.kekName)
  const target = rotated.latestVersion
  const cap = ctx.options.publishedRows
  log(
    `  published: per-row rewrap + UPDATE, 100 at a time, 100 ms sleeps (${cap} rows, extrapolated)`
  )
  const phase = await measure(ctx, 'published', true, () =>
    runPublished(ctx.db, ctx.local, ctx.kekName, target, cap)
  )
  const r = phase.value
  if (r.failed > 0) throw new Error(`published algorithm: ${r.failed} rows failed`)
  const m = measurement(
    'published',
    'published algorithm',
    scaleRows,
    scaleRows,
    r.extrapolatedSeconds,
    phase,
    {
      loadedRows: r.loadedRows,
      loadSeconds: round(r.loadSeconds, 2),
      processedRows: r.processedRows,
      loopSeconds: round(r.loopSeconds, 2),
      loopRowsPerSecond: Math.round(r.loopRowsPerSecond),
      kms: 'local driver, one rewrap call per row',
    },
    true
  )
  log(
    `    ${m.rowsPerSecond.toLocaleString()} rows/s (extrapolated), peak RSS ${m.resources.peakRssMb} MB`
  )
  return m
}
