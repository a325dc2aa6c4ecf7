/*
|--------------------------------------------------------------------------
| The floor: keyset scan + CAS UPDATE, no crypto (two passes, there and back)
|--------------------------------------------------------------------------
*/
import type { Context } from './context.js'
import { log } from './log.js'
import { measure } from './phase.js'
import { measurement, type Measurement } from './report.js'
import { roundTimings, runFloor, scramble, unscramble } from './variants.js'

/**
 * Floor passes `index` and `index + 1`: every row to a new KEK version with
 * scrambled wraps, then back with the wraps restored (the table is valid
 * again after the pair).
 */
export async function floorPair(
  ctx: Context,
  scaleRows: number,
  index: number
): Promise<Measurement[]> {
  const rotated = await ctx.local.rotateKey(ctx.kekName)
  const target = rotated.latestVersion
  const batchSize = ctx.app.config.get<number>('rewrap.rotation.batchSize')
  const out: Measurement[] = []
  for (const [pass, from, to, transform] of [
    [1, ctx.current, target, scramble],
    [2, target, ctx.current, unscramble],
  ] as const) {
    const key = `floor-${index + pass - 1}`
    log(`  ${key}: keyset + CAS UPDATE only, v${from} → v${to}`)
    const phase = await measure(ctx, key, true, () =>
      runFloor(ctx.db, {
        table: 'vault_entries',
        kekName: ctx.kekName,
        fromVersion: from,
        toVersion: to,
        batchSize,
        transform,
      })
    )
    const r = phase.value
    if (r.rows !== scaleRows || r.missed !== 0) {
      throw new Error(`${key} touched ${r.rows} rows (${r.missed} missed), expected ${scaleRows}`)
    }
    out.push(
      measurement(key, `floor pass ${index + pass - 1}`, scaleRows, r.rows, r.seconds, phase, {
        stepsMs: roundTimings(r.timings),
        batchSize,
        walBytesPerRow:
          phase.resources.walBytes === null ? null : Math.round(phase.resources.walBytes / r.rows),
      })
    )
    log(`    ${out[out.length - 1].rowsPerSecond.toLocaleString()} rows/s`)
  }
  return out
}
