/*
|--------------------------------------------------------------------------
| Test runner entry point
|--------------------------------------------------------------------------
|
| Database: TEST_PG_URL (an admin URL, e.g. postgres://postgres@127.0.0.1:5432/postgres)
| points the tests at a server; without it an embedded PostgreSQL is
| started under ./tmp (or, as root when the `postgres` user cannot enter
| this folder, under the system temp dir). Either way the run creates its own database
| (rewrap_test_<pid>) and drops it at the end: never `test`, never the
| app's. Every log line the run writes goes to tmp/test-logs/ so the audit
| suite can check that no secret reached a log.
|
*/
process.env.NODE_ENV = 'test'

import 'reflect-metadata'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { Ignitor, prettyPrintError } from '@adonisjs/core'
import { configure, processCLIArgs, run } from '@japa/runner'
import {
  freePort,
  startEmbeddedPostgres,
  withDatabase,
  type EmbeddedCluster,
} from './embedded_postgres.js'

const APP_ROOT = new URL('../', import.meta.url)

const IMPORTER = (filePath: string) => {
  if (filePath.startsWith('./') || filePath.startsWith('../')) {
    return import(new URL(filePath, APP_ROOT).href)
  }
  return import(filePath)
}

let cluster: EmbeddedCluster | undefined
let adminUrl = process.env.TEST_PG_URL
if (!adminUrl) {
  const dir = fileURLToPath(new URL(`../tmp/test-pg-${process.pid}`, import.meta.url))
  try {
    cluster = await startEmbeddedPostgres({
      dir,
      port: await freePort(),
      persistent: false,
      password: randomBytes(18).toString('base64url'),
    })
  } catch (error) {
    // One line saying why and what to do (e.g. set TEST_PG_URL), no stack.
    const err = error as { code?: string; message?: string }
    process.stderr.write(`${err.code ?? 'E_EMBEDDED_PG'}: ${err.message}\n`)
    process.exit(1)
  }
  for (const notice of cluster.notices) process.stderr.write(`• ${notice}\n`)
  adminUrl = cluster.adminUrl
}
const testDatabase = `rewrap_test_${process.pid}`
const admin = new pg.Client({ connectionString: adminUrl })
await admin.connect()
await admin.query(`DROP DATABASE IF EXISTS ${testDatabase}`)
await admin.query(`CREATE DATABASE ${testDatabase}`)
await admin.end()

process.env.DATABASE_URL = withDatabase(adminUrl, testDatabase)
process.env.TEST_ADMIN_PG_URL = adminUrl
process.env.APP_KEY ??= randomBytes(32).toString('base64url')
process.env.KMS_ROOT_KEY ??= randomBytes(32).toString('base64')
process.env.AUDIT_SIGNING_SEED ??= randomBytes(32).toString('base64url')
// Most specs run acts without approvals; the governance specs switch dual control on.
process.env.DUAL_CONTROL ??= 'off'
process.env.KMS_DRIVER = 'local'
const logDir = fileURLToPath(new URL('../tmp/test-logs', import.meta.url))
mkdirSync(logDir, { recursive: true })
process.env.LOG_FILE = `${logDir}/run-${process.pid}.log`
rmSync(process.env.LOG_FILE, { force: true })
process.env.LOG_LEVEL ??= 'debug'

async function dropTestDatabase() {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  await client.query(`DROP DATABASE IF EXISTS ${testDatabase} WITH (FORCE)`)
  await client.end()
  if (cluster) await cluster.stop()
  process.channel?.unref()
}

new Ignitor(APP_ROOT, { importer: IMPORTER })
  .tap((app) => {
    app.booting(async () => {
      await import('#start/env')
    })
    app.listen('SIGTERM', () => app.terminate())
    app.listenIf(app.managedByPm2, 'SIGINT', () => app.terminate())
  })
  .testRunner()
  .configure(async (app) => {
    const { runnerHooks, ...config } = await import('../tests/bootstrap.js')

    processCLIArgs(process.argv.splice(2))
    configure({
      ...app.rcFile.tests,
      ...config,
      ...{
        setup: runnerHooks.setup,
        teardown: runnerHooks.teardown.concat([() => app.terminate(), dropTestDatabase]),
      },
    })
  })
  .run(() => run())
  .catch(async (error) => {
    process.exitCode = 1
    prettyPrintError(error)
    await dropTestDatabase().catch(() => {})
  })
