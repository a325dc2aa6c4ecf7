/*
|--------------------------------------------------------------------------
| Rewrap in-process: KeyRotationService.rotate with the local or vault driver
|--------------------------------------------------------------------------
*/
import type { KmsDriver } from '#kms/contract'
import type { Context } from './context.js'
import { slowest } from './foreground.js'
import { log } from './log.js'
import { measure } from './phase.js'
import { measurement, type Measurement } from './report.js'
import { roundTimings, runRewrap, type ServiceRunResult } from './variants.js'

function rewrapDetails(run: ServiceRunResult, walBytes: number | null) {
  return {
    run: run.run,
    stepsMs: roundTimings(run.timings),
    walBytesPerRow:
      walBytes === null ? null : Math.round(walBytes / Math.max(1, run.run.rewrapped)),
  }
}

/**
 * Rotates the KEK and rewraps every row at full speed with `driver`;
 * throws unless every row was rewrapped. Moves `ctx.current`.
 */
export async function rewrapVariant(
  ctx: Context,
  key: 'local' | 'vault',
  driver: KmsDriver,
  scaleRows: number
): Promise<Measurement> {
  log(`  ${key}: KeyRotationService.rotate with the ${key} driver`)
  const phase = await measure(ctx, key, true, () => runRewrap(ctx.app, key, driver, ctx.kekName))
  const r = phase.value
  if (r.run.status !== 'completed' || r.run.rewrapped !== scaleRows) {
    throw new Error(
      `${key} rotation ended ${r.run.status} with ${r.run.rewrapped}/${scaleRows} rows rewrapped`
    )
  }
  ctx.current = r.run.targetVersion!
  const m = measurement(
    key,
    key === 'local' ? 'Rewrap, local KMS' : 'Rewrap, vault driver → kms:serve',
    scaleRows,
    r.run.rewrapped,
    r.seconds,
    phase,
    rewrapDetails(r, phase.resources.walBytes)
  )
  log(`    ${m.rowsPerSecond.toLocaleString()} rows/s, peak RSS ${m.resources.peakRssMb} MB`)
  log(`    slowest foreground requests (ms into the window: ms): ${slowest(phase.foreground)}`)
  return m
}
