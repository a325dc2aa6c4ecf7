/*
|--------------------------------------------------------------------------
| The KMS drivers under benchmark and the kms:serve child
|--------------------------------------------------------------------------
*/
import { randomBytes } from 'node:crypto'
import type { ApplicationService } from '@adonisjs/core/types'
import type { KmsDriver } from '#kms/contract'
import { freePort } from '../embedded_postgres.js'
import { log } from './log.js'
import { answers, startChild, type Child } from './processes.js'

/** The local driver twice: as the app resolves it, and raw. */
export interface LocalDrivers {
  /** As the app resolves it (instrumented): for the published algorithm. */
  local: KmsDriver
  /** Raw: the swapped managers of the Rewrap variants instrument it themselves. */
  localRaw: KmsDriver
}

/** The local drivers, on the app's database and KMS_ROOT_KEY. */
export async function localDrivers(app: ApplicationService): Promise<LocalDrivers> {
  const { KmsManager } = await import('#kms/kms_manager')
  const manager = await app.container.make(KmsManager)
  const local = await manager.use('local')
  const { createLocalDriver } = await import('#kms/drivers/local_factory')
  const localRaw = await createLocalDriver(app, { rootKey: process.env.KMS_ROOT_KEY })
  return { local, localRaw }
}

/**
 * Starts `node ace kms:serve` (same kms_keys table and root key) on a free
 * loopback port, its token in KMS_SERVE_TOKEN (never on the command line),
 * and answers a vault driver talking to it.
 */
export async function startKmsServe(children: Child[]): Promise<KmsDriver> {
  const port = await freePort()
  const token = randomBytes(24).toString('base64url')
  children.push(
    await startChild(
      'kms-serve',
      ['ace.js', 'kms:serve', '--port', String(port)],
      { KMS_SERVE_TOKEN: token },
      () => answers(`http://127.0.0.1:${port}/v1/sys/health`)
    )
  )
  const { VaultKmsDriver } = await import('#kms/drivers/vault')
  const vault = new VaultKmsDriver({
    endpoint: `http://127.0.0.1:${port}`,
    token,
    mount: 'transit',
    timeoutMs: 30_000,
    batchSize: 1000,
    concurrency: 4,
    retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 5_000 },
  })
  log(`kms:serve listening on 127.0.0.1:${port}`)
  return vault
}
