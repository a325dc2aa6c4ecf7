/*
|--------------------------------------------------------------------------
| Setting up and tearing down a run
|--------------------------------------------------------------------------
|
| The database, the environment, migrations, the build, the app booted
| in-process; then the benchmark KEK, the kms:serve child, the HTTP server
| and its load. What was started is kept in a {@link Held} so that the
| run's `finally` stops it whatever failed.
|
*/
import type { ApplicationService } from '@adonisjs/core/types'
import { bootApp, buildApp, migrate, useBenchEnvironment } from './boot.js'
import type { Context } from './context.js'
import { describeUrl, prepareDatabase, type BenchDatabase } from './database.js'
import { startForeground } from './foreground.js'
import { localDrivers, startKmsServe } from './kms.js'
import type { ForegroundLoad } from './load.js'
import { log } from './log.js'
import { postgresInfo, type PostgresInfo } from './machine.js'
import type { BenchOptions } from './options.js'
import type { Child } from './processes.js'

/** What a run started and must stop. */
export interface Held {
  database?: BenchDatabase
  app?: ApplicationService
  children: Child[]
  load?: ForegroundLoad
}

/** The app, booted on a migrated benchmark database. */
export interface StartedApp {
  app: ApplicationService
  database: BenchDatabase
  /** Ace entry of the rotate:kek variant. */
  cliEntry: string
}

/**
 * Prepares the database and environment, migrates, builds (unless
 * `--cli-from-source`) and boots the app in this process.
 */
export async function startApp(options: BenchOptions, held: Held): Promise<StartedApp> {
  const database = (held.database = await prepareDatabase())
  log(`database ${describeUrl(database.url)} (${database.source})`)
  useBenchEnvironment(database.url)
  await migrate()
  // The build is for the rotate:kek variant only.
  const cliEntry =
    options.cliFromSource || options.cloudOnly || options.workersOnly || !options.cli
      ? 'ace.js'
      : await buildApp()
  const app = (held.app = await bootApp())
  return { app, database, cliEntry }
}

/**
 * Creates the benchmark KEK, starts kms:serve (unless `--skip-vault`), the
 * HTTP server and the load; answers the phases' context and the
 * PostgreSQL server's details.
 */
export async function createContext(
  started: StartedApp,
  options: BenchOptions,
  run: { startedAt: Date; gc: () => void },
  held: Held
): Promise<{ ctx: Context; postgres: PostgresInfo }> {
  const { app, cliEntry } = started
  const { default: db } = await import('@adonisjs/lucid/services/db')
  const { local, localRaw } = await localDrivers(app)
  const kekName = `bench_${run.startedAt.getTime()}`
  await local.createKey(kekName)
  const postgres = await postgresInfo(db)
  const vault = options.skipVault ? null : await startKmsServe(held.children)
  const load = (held.load = await startForeground(app, options, held.children))
  const ctx: Context = {
    options,
    app,
    db,
    kekName,
    local,
    localRaw,
    vault,
    load,
    children: held.children,
    gc: run.gc,
    current: 1,
    cliEntry,
    ids: { minId: 1, maxId: 1 },
  }
  return { ctx, postgres }
}

/** Stops what the run started (load, children, app, database), newest first. */
export async function tearDown(held: Held) {
  if (held.load) await held.load.close().catch(() => {})
  for (const child of held.children.reverse()) await child.stop().catch(() => {})
  if (held.app) await held.app.terminate().catch(() => {})
  if (held.database) {
    await held.database.cleanup().catch((error) => log(`cleanup failed: ${error.message}`))
  }
}
