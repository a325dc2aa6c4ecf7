/*
|--------------------------------------------------------------------------
| Cloud KMS drivers against their stand-ins with an injected latency
|--------------------------------------------------------------------------
|
| Per driver (aws-kms, azure-keyvault) and per latency (`--cloud-latency`):
| `node ace kms:serve --api … --latency-ms L` as a child, a fresh KEK
| seeded through it (`demo:seed` in a child whose KMS_DRIVER is that
| driver), then KeyRotationService.rotate at full speed in this process
| with the driver talking to the child over HTTP(S). There is no batch
| API: one call per row (AWS ReEncrypt) or two (Azure unwrap + wrap), so
| the bound is `concurrency ÷ (calls per row × latency)` rows/s, or the
| requests/s ceiling ÷ calls per row if lower. Imports app services: load
| it once the app has booted.
|
*/
import { randomBytes } from 'node:crypto'
import type { KmsDriver } from '#kms/contract'
import { AwsKmsDriver } from '#kms/drivers/aws_kms'
import { AzureKeyVaultDriver, DEFAULT_AZURE_REQUESTS_PER_SECOND } from '#kms/drivers/azure_keyvault'
import { testTls } from '#tests/helpers/azure'
import { freePort } from '../embedded_postgres.js'
import type { Context } from './context.js'
import { log } from './log.js'
import { measure } from './phase.js'
import { runAce, startChild, type Child } from './processes.js'
import type { CloudDriverName, CloudRow } from './cloud_report.js'
import { round } from './sampler.js'
import { roundTimings, runRewrap } from './variants.js'

/** The driver defaults of config/kms.ts. */
const DEFAULTS: Record<CloudDriverName, { concurrency: number; requestsPerSecond: number }> = {
  'aws-kms': { concurrency: 32, requestsPerSecond: 1000 },
  'azure-keyvault': { concurrency: 8, requestsPerSecond: DEFAULT_AZURE_REQUESTS_PER_SECOND },
}

const CALLS_PER_ROW: Record<CloudDriverName, number> = { 'aws-kms': 1, 'azure-keyvault': 2 }

/** A stand-in child and how to reach it. */
interface StandIn {
  child: Child
  /** Environment of a `node ace` child using the driver against it. */
  env: Record<string, string>
  driver(concurrency: number, requestsPerSecond: number): KmsDriver
}

async function startStandIn(name: CloudDriverName, latencyMs: number): Promise<StandIn> {
  const port = await freePort()
  const args = ['ace.js', 'kms:serve', '--api', name, '--port', String(port)]
  args.push('--latency-ms', String(latencyMs))
  if (name === 'aws-kms') {
    const credentials = {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
    }
    const env = {
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
    }
    const endpoint = `http://127.0.0.1:${port}`
    const driver = (concurrency: number, requestsPerSecond: number) =>
      new AwsKmsDriver({
        region: 'us-east-1',
        endpoint,
        credentials,
        concurrency,
        requestsPerSecond,
      })
    const child = await startChild(`kms-serve-aws-${latencyMs}`, args, env, async () => {
      const probe = driver(1, 0)
      try {
        await probe.listKeys()
        return true
      } finally {
        await probe.close()
      }
    })
    return {
      child,
      env: { ...env, KMS_DRIVER: name, AWS_ENDPOINT_URL_KMS: endpoint },
      driver,
    }
  }
  const tls = await testTls()
  const token = randomBytes(24).toString('base64url')
  const vaultUrl = `https://127.0.0.1:${port}`
  args.push('--tls-cert', tls.files.cert, '--tls-key', tls.files.key)
  const driver = (concurrency: number, requestsPerSecond: number) =>
    new AzureKeyVaultDriver({
      vaultUrl,
      token,
      ca: tls.ca,
      disableChallengeResourceVerification: true,
      concurrency,
      requestsPerSecond,
    })
  const child = await startChild(
    `kms-serve-azure-${latencyMs}`,
    args,
    { KMS_SERVE_TOKEN: token },
    async () => {
      const probe = driver(1, 1000)
      try {
        await probe.listKeys()
        return true
      } finally {
        await probe.close()
      }
    }
  )
  return {
    child,
    env: {
      KMS_DRIVER: name,
      AZURE_KEYVAULT_URL: vaultUrl,
      AZURE_KEYVAULT_TOKEN: token,
      AZURE_KEYVAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      NODE_EXTRA_CA_CERTS: tls.files.ca,
    },
    driver,
  }
}

/** Rows for about `seconds` at the bound, within [1,000, max]. */
function rowsFor(bound: number, seconds: number, max: number) {
  return Math.min(max, Math.max(1000, Math.round((bound * seconds) / 1000) * 1000))
}

/** Seeds `rows` rows under a new KEK through the stand-in (not timed). */
async function seedThrough(standIn: StandIn, kek: string, rows: number) {
  await runAce(['demo:seed', '--kek', kek, '--rows', String(rows), '--batch', '1000', '--json'], {
    ...standIn.env,
    // Seeding is not measured: no ceiling.
    AWS_KMS_REQUESTS_PER_SECOND: '0',
    AZURE_KEYVAULT_REQUESTS_PER_SECOND: '0',
    AWS_KMS_CONCURRENCY: '32',
    AZURE_KEYVAULT_CONCURRENCY: '32',
  })
}

/** One row: seed, rotate at full speed, measure. */
async function measureRow(
  ctx: Context,
  standIn: StandIn,
  spec: {
    driver: CloudDriverName
    latencyMs: number
    concurrency: number
    requestsPerSecond: number
    defaults: boolean
  }
): Promise<CloudRow> {
  const callsPerRow = CALLS_PER_ROW[spec.driver]
  const concurrencyBound = spec.concurrency / ((callsPerRow * spec.latencyMs) / 1000)
  const ceilingBound = spec.requestsPerSecond > 0 ? spec.requestsPerSecond / callsPerRow : null
  const bound = Math.min(concurrencyBound, ceilingBound ?? Infinity)
  const rows = rowsFor(bound, ctx.options.cloudSeconds, ctx.options.cloudRows)
  // Dashes: Azure key names allow only letters, digits and dashes.
  const kek = `bench-${spec.driver}-${spec.latencyMs}-${Date.now()}`
  log(
    `  ${spec.driver}, ${spec.latencyMs} ms, concurrency ${spec.concurrency}, ceiling ${spec.requestsPerSecond || 'none'} req/s: seeding ${rows.toLocaleString()} rows`
  )
  await seedThrough(standIn, kek, rows)
  const driver = standIn.driver(spec.concurrency, spec.requestsPerSecond)
  const cpuBefore = { bench: process.cpuUsage(), standIn: standIn.child.cpuSeconds() }
  try {
    const phase = await measure(ctx, `${spec.driver}-${spec.latencyMs}`, false, () =>
      runRewrap(ctx.app, spec.driver, driver, kek)
    )
    const r = phase.value
    if (r.run.status !== 'completed' || r.run.rewrapped !== rows) {
      throw new Error(
        `${spec.driver} rotation ended ${r.run.status} with ${r.run.rewrapped}/${rows} rows rewrapped`
      )
    }
    const bench = process.cpuUsage(cpuBefore.bench)
    const standInAfter = standIn.child.cpuSeconds()
    const rowsPerSecond = Math.round(rows / r.seconds)
    const row: CloudRow = {
      ...spec,
      callsPerRow,
      rows,
      seconds: round(r.seconds, 2),
      rowsPerSecond,
      concurrencyBound: Math.round(concurrencyBound),
      ceilingBound: ceilingBound === null ? null : Math.round(ceilingBound),
      bound: Math.round(bound),
      ofBound: round(rowsPerSecond / bound, 3),
      timings: roundTimings(r.timings),
      cpuSeconds: {
        bench: round((bench.user + bench.system) / 1e6, 1),
        standIn:
          standInAfter === null || cpuBefore.standIn === null
            ? null
            : round(standInAfter - cpuBefore.standIn, 1),
      },
    }
    log(
      `    ${rowsPerSecond.toLocaleString()} rows/s = ${Math.round(row.ofBound * 100)}% of the bound ${row.bound.toLocaleString()} rows/s`
    )
    return row
  } finally {
    await driver.close()
  }
}

/**
 * Every cloud row: per driver, per `--cloud-latency` at `--cloud-concurrency`
 * and `--cloud-rps`, then the driver's own defaults at the first latency.
 */
export async function cloudVariants(ctx: Context): Promise<CloudRow[]> {
  const { cloudLatencies, cloudConcurrency, cloudRps } = ctx.options
  const rows: CloudRow[] = []
  for (const driver of ['aws-kms', 'azure-keyvault'] as const) {
    for (const [index, latencyMs] of cloudLatencies.entries()) {
      log(`cloud: ${driver} stand-in with ${latencyMs} ms per answer`)
      const standIn = await startStandIn(driver, latencyMs)
      try {
        rows.push(
          await measureRow(ctx, standIn, {
            driver,
            latencyMs,
            concurrency: cloudConcurrency,
            requestsPerSecond: cloudRps,
            defaults: false,
          })
        )
        if (index === 0) {
          rows.push(
            await measureRow(ctx, standIn, {
              driver,
              latencyMs,
              ...DEFAULTS[driver],
              defaults: true,
            })
          )
        }
      } finally {
        await standIn.child.stop()
      }
    }
  }
  return rows
}
