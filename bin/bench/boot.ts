/*
|--------------------------------------------------------------------------
| The app under benchmark: environment, build, in-process boot
|--------------------------------------------------------------------------
*/
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ignitor } from '@adonisjs/core'
import type { ApplicationService } from '@adonisjs/core/types'
import { log } from './log.js'
import { runAce } from './processes.js'

const APP_ROOT = new URL('../../', import.meta.url)

/**
 * The environment of this process and its children: the benchmark
 * database, generated keys when missing, production mode, the local KMS.
 */
export function useBenchEnvironment(databaseUrl: string) {
  process.env.DATABASE_URL = databaseUrl
  // The keys stay with the database: a benchmark database reused by a later run still
  // opens its keyrings (KMS_ROOT_KEY) and extends its audit chain (AUDIT_SIGNING_SEED).
  const keys = benchKeys(databaseUrl)
  process.env.APP_KEY ??= keys.APP_KEY
  process.env.KMS_ROOT_KEY ??= keys.KMS_ROOT_KEY
  // Every rotation run writes its audit records, signed by the service AID.
  process.env.AUDIT_SIGNING_SEED ??= keys.AUDIT_SIGNING_SEED
  process.env.NODE_ENV = 'production'
  process.env.LOG_LEVEL ??= 'warn'
  process.env.KMS_DRIVER = 'local'
  // The bench measures the rewrap loop, not the approval of the act that starts it (one gate
  // check per run, before the loop): dual control off, as in the test suite. Each act still
  // logs the dual-control-off warning.
  process.env.DUAL_CONTROL ??= 'off'
}

type BenchKeys = { APP_KEY: string; KMS_ROOT_KEY: string; AUDIT_SIGNING_SEED: string }

/**
 * The generated keys of one benchmark database, kept in tmp/bench-keys (0600,
 * git-ignored) under a digest of its URL; made on first use.
 */
function benchKeys(databaseUrl: string): BenchKeys {
  const dir = fileURLToPath(new URL('tmp/bench-keys/', APP_ROOT))
  const file = `${dir}${createHash('sha256').update(databaseUrl).digest('hex').slice(0, 16)}.json`
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BenchKeys
  } catch {
    const keys: BenchKeys = {
      APP_KEY: randomBytes(32).toString('base64url'),
      KMS_ROOT_KEY: randomBytes(32).toString('base64'),
      AUDIT_SIGNING_SEED: randomBytes(32).toString('base64url'),
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    writeFileSync(file, JSON.stringify(keys), { mode: 0o600 })
    return keys
  }
}

/** Migrates the benchmark database (`node ace migration:run --force` in a child). */
export async function migrate() {
  await runAce(['migration:run', '--force'])
  log('migrated')
}

/**
 * `node ace build` (the production build operators run, no TS loader):
 * answers the entry of its Ace file. It resolves packages from the
 * project's node_modules (build/ sits inside the project).
 */
export async function buildApp(): Promise<string> {
  log('building the app (node ace build) for the rotate:kek variant')
  await runAce(['build'])
  return 'build/ace.js'
}

/** Boots the app in this process (console environment) to call its services directly. */
export async function bootApp(): Promise<ApplicationService> {
  const ignitor = new Ignitor(APP_ROOT, {
    importer: (filePath: string) =>
      filePath.startsWith('./') || filePath.startsWith('../')
        ? import(new URL(filePath, APP_ROOT).href)
        : import(filePath),
  })
  const app = ignitor
    .tap((application) => {
      application.booting(async () => {
        await import('#start/env')
      })
    })
    .createApp('console')
  await app.init()
  await app.boot()
  await app.start(async () => {})
  return app
}
