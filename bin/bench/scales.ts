/*
|--------------------------------------------------------------------------
| The two scales of a run and the variants of each
|--------------------------------------------------------------------------
|
| Small scale (--rss-rows): seed, floor, Rewrap local, Rewrap vault,
| rotate:kek. Full scale (--rows): seed the rest, warm-up, idle window,
| floor, Rewrap local, Rewrap vault, rotate:kek, floor again, HOT
| experiment, published. Imports app services: load it once the app has
| booted.
|
*/
import { cliVariant } from './cli_variant.js'
import type { Context } from './context.js'
import { floorPair } from './floor.js'
import { idleWindow, slowest, warmUp } from './foreground.js'
import { hotExperiment, type HotResult } from './hot.js'
import type { ForegroundStats } from './load.js'
import { log } from './log.js'
import { checkpoint } from './memory.js'
import { publishedVariant } from './published.js'
import { addRatios, type Measurement } from './report.js'
import { rewrapVariant } from './rewrap_variant.js'
import { round } from './sampler.js'
import { seed } from './seed.js'

/** What both scales measured. */
export interface ScaleResults {
  /** Seconds per seeding, by rows seeded. */
  seeding: Record<string, number>
  /** Small scale; empty with `--rss-rows 0`. */
  small: Measurement[]
  full: Measurement[]
  /** The idle window before the full-scale variants. */
  idle: ForegroundStats | null
  hot: HotResult | null
  /** The median floor pass at full scale, rows/s. */
  floorFull: number | null
}

/** The variants that run at both scales, in order. */
async function scale(ctx: Context, scaleRows: number, full: boolean): Promise<Measurement[]> {
  const results: Measurement[] = []
  results.push(...(await floorPair(ctx, scaleRows, 1)))
  results.push(await rewrapVariant(ctx, 'local', ctx.localRaw, scaleRows))
  if (ctx.vault) results.push(await rewrapVariant(ctx, 'vault', ctx.vault, scaleRows))
  if (ctx.options.cli) results.push(await cliVariant(ctx, scaleRows, full))
  if (full) {
    results.push(...(await floorPair(ctx, scaleRows, 3)))
  }
  return results
}

/** Seeds `rows` more rows and records the seconds it took under `seeding`. */
async function seedMore(ctx: Context, rows: number, seeding: Record<string, number>) {
  const seeded = await seed(ctx, rows)
  seeding[String(rows)] = round(seeded.seconds, 1)
  ctx.gc()
  return seeded
}

/** The small scale (`--rss-rows`; nothing when 0). */
async function smallScale(ctx: Context, seeding: Record<string, number>) {
  const { rssRows } = ctx.options
  if (rssRows <= 0) return []
  log(`small scale: seeding ${rssRows.toLocaleString()} rows`)
  await seedMore(ctx, rssRows, seeding)
  checkpoint(`seeded ${rssRows}`)
  const small = await scale(ctx, rssRows, false)
  addRatios(small)
  checkpoint('small scale done')
  return small
}

/** The idle foreground window before the full-scale variants. */
async function firstIdleWindow(ctx: Context) {
  await warmUp(ctx)
  log(`idle foreground window (${ctx.options.idleSeconds} s)`)
  const idle = await idleWindow(ctx, 'idle')
  log(`  idle p50 ${idle?.p50Ms} ms, p99 ${idle?.p99Ms} ms`)
  log(`  slowest (ms into the window: ms): ${slowest(idle)}`)
  return idle
}

/** The HOT experiment (unless `--skip-hot`). */
async function hot(ctx: Context): Promise<HotResult | null> {
  if (ctx.options.skipHot) return null
  log('HOT experiment: floor on two fresh copies (scan index vs fillfactor 70, no scan index)')
  return hotExperiment(
    ctx.db,
    ctx.kekName,
    ctx.current,
    ctx.app.config.get<number>('rewrap.rotation.batchSize'),
    log
  )
}

/** The full scale: the rest of `--rows` seeded, then every variant. */
async function fullScale(ctx: Context, seeding: Record<string, number>) {
  const { rows, rssRows } = ctx.options
  log(`full scale: seeding ${(rows - rssRows).toLocaleString()} more rows`)
  const seeded = await seedMore(ctx, rows - rssRows, seeding)
  checkpoint(`seeded ${rows}`)
  if (seeded.totalRows !== rows) {
    throw new Error(`expected ${rows} rows, found ${seeded.totalRows}`)
  }
  const idle = await firstIdleWindow(ctx)
  const full = await scale(ctx, rows, true)
  const hotResult = await hot(ctx)
  full.push(await publishedVariant(ctx, rows))
  const floorFull = addRatios(full)
  return { idle, full, hot: hotResult, floorFull }
}

/** What `--cloud-only` leaves of the scales: nothing. */
export function emptyScaleResults(): ScaleResults {
  return { seeding: {}, small: [], full: [], idle: null, hot: null, floorFull: null }
}

/** Both scales, in order. */
export async function runScales(ctx: Context): Promise<ScaleResults> {
  const seeding: Record<string, number> = {}
  const small = await smallScale(ctx, seeding)
  const full = await fullScale(ctx, seeding)
  return { seeding, small, ...full }
}
