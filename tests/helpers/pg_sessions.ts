/*
|--------------------------------------------------------------------------
| Sessions of the test database: hold rows, see backends and locks go
|--------------------------------------------------------------------------
|
| A run's batch commit UPDATEs its rows; a row this helper holds (SELECT …
| FOR UPDATE in an open transaction on a connection of its own) makes that
| UPDATE wait. So a test can stop a run exactly at the batch holding the
| row, look at it, signal or kill its process, and let it go — without a
| window of "it is probably still running".
|
*/
import pg from 'pg'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { waitFor } from '#tests/helpers/wait'

/** Rows held by a transaction of the test's own. */
export interface RowHold {
  /** The holding session's backend pid. */
  pid: number
  /**
   * Resolves, with their pids, once some session waits for a held row (a
   * run parked at its batch); rejects after the deadline.
   */
  blocked(timeoutMs?: number): Promise<number[]>
  /** Ends the transaction: the parked run goes on. Idempotent. */
  release(): Promise<void>
}

/** The app database's connection string (the test run's own database). */
export function appConnectionString(): string {
  return app.config.get<{ connectionString: string }>('database.connections.postgres.connection')
    .connectionString
}

/** A session of its own on the test database (another client of the app's database). */
export async function otherSession(applicationName = 'psql'): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: appConnectionString(),
    application_name: applicationName,
  })
  await client.connect()
  return client
}

/**
 * Holds `ids` of vault_entries (row locks in an open transaction).
 */
export function holdRows(ids: string[]): Promise<RowHold> {
  return holdWhere('vault_entries', 'id = ANY($1::bigint[])', [ids], ids.length)
}

/**
 * Holds the rows of `table` matching `where` (`$1`… placeholders), which
 * must be `count` rows.
 */
export async function holdWhere(
  table: string,
  where: string,
  params: unknown[],
  count: number
): Promise<RowHold> {
  const what = `${table} rows where ${where} (${JSON.stringify(params)})`
  const client = await otherSession('rewrap-test-hold')
  await client.query('BEGIN')
  const { rowCount } = await client.query(
    `SELECT 1 FROM ${table} WHERE ${where} FOR UPDATE`,
    params
  )
  if (rowCount !== count) {
    await client.end()
    throw new Error(`${what}: ${rowCount} rows, not ${count}`)
  }
  const {
    rows: [{ pid }],
  } = await client.query('SELECT pg_backend_pid() AS pid')
  let released = false
  return {
    pid,
    blocked: (timeoutMs = 60_000) =>
      waitFor(
        async () => {
          // Not on the holding connection: inside a transaction pg_stat_activity is a snapshot.
          const { rows } = await db.rawQuery(
            'SELECT pid FROM pg_stat_activity WHERE ?::int = ANY(pg_blocking_pids(pid))',
            [pid]
          )
          return rows.length > 0 ? rows.map((row: { pid: number }) => Number(row.pid)) : null
        },
        { timeoutMs, what: `a session to wait for ${what}` }
      ),
    async release() {
      if (released) return
      released = true
      await client.query('ROLLBACK').catch(() => {})
      await client.end().catch(() => {})
    },
  }
}

/**
 * Resolves once none of the backends `pids` exists any more (e.g. the
 * server ends of a killed process's connections, done with their last
 * statement).
 */
export async function backendsGone(pids: number[], timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await db.rawQuery(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY(?::int[])',
        [pids]
      )
      return rows[0].n === 0
    },
    { timeoutMs, what: `backends ${pids.join(', ')} to end` }
  )
}

/**
 * Resolves once no session holds an advisory lock on the test database: a
 * run answers `completed` from its row a moment before its process lets go
 * of the KEK's lock, and a next start in that moment is refused (409).
 */
export async function advisoryLocksReleased(timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await db.rawQuery(
        `SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
      )
      return rows[0].n === 0
    },
    { timeoutMs, what: 'every advisory lock to be released' }
  )
}
