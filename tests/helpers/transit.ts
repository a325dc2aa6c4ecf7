/*
|--------------------------------------------------------------------------
| Test helpers: an in-process transit server and a vault driver for it
|--------------------------------------------------------------------------
*/
import { randomBytes } from 'node:crypto'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import { decodeRootKey } from '#kms/drivers/local_factory'
import { VaultKmsDriver, type VaultDriverOptions } from '#kms/drivers/vault'
import { LocalKeyringStore } from '#kms/local_keyring_store'
import type { RetryDeps } from '#kms/retry'
import { createTransitServer } from '#kms/transit_server/from_app'
import type { TransitServer } from '#kms/transit_server/transit_server'
import type { TransitServerOptions } from '#kms/transit_server/types'

/** A running in-process transit server. */
export interface TransitFixture {
  /** `http://127.0.0.1:<port>` */
  url: string
  token: string
  server: TransitServer
  close(): Promise<void>
}

/** Retry deps whose sleep returns at once and records each requested delay. */
export interface RecordingRetryDeps extends RetryDeps {
  /** Delays (ms) the driver asked to sleep, in order. */
  sleeps: number[]
}

/**
 * A random token, a random KEK name suffix…
 */
export function randomId(bytes = 6): string {
  return randomBytes(bytes).toString('hex')
}

/**
 * Starts a transit server on a free loopback port with a random token,
 * keyrings in the test database (sealed under KMS_ROOT_KEY).
 */
export async function startTransitServer(
  options: Partial<Omit<TransitServerOptions, 'store'>> = {}
): Promise<TransitFixture> {
  const token = options.token ?? `test-${randomBytes(24).toString('base64url')}`
  const server = await createTransitServer(app, { logger, ...options, token })
  await server.listen(0, '127.0.0.1')
  return { url: server.url, token, server, close: () => server.close() }
}

/**
 * Retry deps for tests: no real waiting, delays recorded, jitter fixed at `random`.
 */
export function fastRetryDeps(random = 0.5): RecordingRetryDeps {
  const sleeps: number[] = []
  return {
    sleeps,
    random: () => random,
    sleep: async (ms) => {
      sleeps.push(ms)
    },
  }
}

/**
 * A VaultKmsDriver talking to the fixture over real HTTP (node-vault),
 * with fast retries unless `retryDeps` is given.
 */
export function vaultDriverFor(
  fixture: Pick<TransitFixture, 'url' | 'token'>,
  options: Partial<VaultDriverOptions> = {}
): { driver: VaultKmsDriver; retryDeps: RecordingRetryDeps } {
  const retryDeps = (options.retryDeps as RecordingRetryDeps | undefined) ?? fastRetryDeps()
  const driver = new VaultKmsDriver({
    endpoint: fixture.url,
    token: fixture.token,
    timeoutMs: 10_000,
    retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 200 },
    ...options,
    retryDeps,
  })
  return { driver, retryDeps }
}

/** A free TCP port on the loopback interface (one implementation, shared with bin/). */
export { freePort } from '../../bin/embedded_postgres.js'

/**
 * A keyring store on a fresh, empty copy of the `kms_keys` table (a KMS
 * holding no KEK); `drop()` removes the table.
 */
export async function emptyKeyringStore(): Promise<{
  store: LocalKeyringStore
  drop(): Promise<void>
}> {
  const db = await app.container.make('lucid.db')
  const table = `kms_keys_empty_${randomId()}`
  await db.rawQuery(`CREATE TABLE ${table} (LIKE kms_keys INCLUDING ALL)`)
  const { default: env } = await import('#start/env')
  const rootKey = decodeRootKey(env.get('KMS_ROOT_KEY')?.release())
  const store = new LocalKeyringStore(db, rootKey, randomBytes, table)
  return {
    store,
    drop: async () => {
      await db.rawQuery(`DROP TABLE IF EXISTS ${table}`)
    },
  }
}
