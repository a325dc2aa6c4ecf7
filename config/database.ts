import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import env from '#start/env'
import { defineConfig } from '@adonisjs/lucid'
import { registerBackend, type PgClientLike } from '#services/backend_priority'

/**
 * The embedded Postgres `npm start` runs when DATABASE_URL is unset (its
 * superuser password is generated into .env as EMBEDDED_PG_PASSWORD).
 */
export const embeddedDatabaseUrl = `postgres://postgres:${encodeURIComponent(env.get('EMBEDDED_PG_PASSWORD')?.release() ?? '')}@127.0.0.1:${env.get('EMBEDDED_PG_PORT', 54329)}/rewrap`

/**
 * Names the sessions in pg_stat_activity (unless the URL already does). Ace
 * processes (rotate:kek, reencrypt, scheduler:run, admin commands) are
 * `rewrap-bg`: the rewrap loop's foreground detector does not count them
 * as load to yield to; the HTTP server is `rewrap`.
 */
function withApplicationName(url: string, name: string): string {
  try {
    const parsed = new URL(url)
    if (!parsed.searchParams.has('application_name')) {
      parsed.searchParams.set('application_name', name)
    }
    return parsed.toString()
  } catch {
    return url
  }
}

const background = app.getEnvironment() === 'console'

/**
 * Ace processes remember each connection's backend pid, so that background
 * work can lower the priority of its Postgres backends when the server runs
 * on this host (app/services/backend_priority.ts).
 */
function afterCreate(conn: PgClientLike, done: (error: unknown, conn: PgClientLike) => void) {
  registerBackend(conn).then(
    () => done(null, conn),
    (error) => done(error, conn)
  )
}

/**
 * knex's own log lines, one line each: a failed connection attempt comes
 * with the pg stack ("Acquire connection error: … at parseErrorMessage …"),
 * which says nothing to an operator (the caller reports the E_ code).
 */
function firstLine(message: unknown): string {
  return String(message).split('\n')[0]
}
const knexLog = {
  warn: (message: unknown) => logger.warn(firstLine(message)),
  error: (message: unknown) => logger.error(firstLine(message)),
  deprecate: (message: unknown) => logger.info(firstLine(message)),
  debug: (message: unknown) => logger.debug(firstLine(message)),
}

const dbConfig = defineConfig({
  connection: 'postgres',
  prettyPrintDebugQueries: false,
  connections: {
    postgres: {
      client: 'pg',
      // knex's `log` option (Lucid passes the connection config to knex; not in its types).
      ...({ log: knexLog } as object),
      connection: {
        connectionString: withApplicationName(
          env.get('DATABASE_URL') ?? embeddedDatabaseUrl,
          background ? 'rewrap-bg' : 'rewrap'
        ),
      },
      pool: { min: 0, max: 10, ...(background ? { afterCreate } : {}) },
      migrations: {
        naturalSort: true,
        paths: ['database/migrations'],
      },
    },
  },
})

export default dbConfig
