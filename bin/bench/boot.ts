/*
|--------------------------------------------------------------------------
| The app under benchmark: environment, build, in-process boot
|--------------------------------------------------------------------------
*/
import { randomBytes } from 'node:crypto'
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
  process.env.APP_KEY ??= randomBytes(32).toString('base64url')
  process.env.KMS_ROOT_KEY ??= randomBytes(32).toString('base64')
  // Every rotation run writes its audit records, signed by the service AID.
  process.env.AUDIT_SIGNING_SEED ??= randomBytes(32).toString('base64url')
  // The bench measures the loop, not the approvals: its rotations run without dual control
  // (as the test suite's; on by default since the governance merge, which made them refused).
  process.env.DUAL_CONTROL ??= 'off'
  process.env.NODE_ENV = 'production'
  process.env.LOG_LEVEL ??= 'warn'
  process.env.KMS_DRIVER = 'local'
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
