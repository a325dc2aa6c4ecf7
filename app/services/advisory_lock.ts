/*
|--------------------------------------------------------------------------
| Advisory locks
|--------------------------------------------------------------------------
|
| One holder at a time across processes and machines: a Postgres session
| advisory lock held on a dedicated connection for as long as the work
| runs (a rotation of a KEK, a re-encrypt of a KEK, a scheduler's turn for
| a KEK; `lockKeys` names each). If the process dies, its connection
| closes and the lock goes with it; a `running` run row stays resumable.
|
| Inject `AdvisoryLock` (`@inject`; swappable with `app.container.swap`).
|
*/
import pg from 'pg'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'

/**
 * Lock keys are `hashtextextended(LOCK_PREFIX || key, 0)`: one formula for
 * taking and checking. The prefix predates the re-encrypt and scheduler
 * keys and stays as it is: a process of the previous release takes the
 * same locks during a rolling deploy, and a changed prefix would let it
 * run the same work at the same time.
 */
const LOCK_PREFIX = 'rewrap:rotation:'

/** The key of each kind of exclusive work. */
export const lockKeys = {
  /** One rotation run of a KEK at a time (also guards retire / trim). */
  rotation: (kekName: string) => kekName,
  /** One re-encrypt of rows away from a KEK at a time. */
  reencrypt: (fromKek: string) => `reencrypt:${fromKek}`,
  /** One scheduler turn for a KEK at a time. */
  scheduler: (kekName: string) => `scheduler:${kekName}`,
}

/**
 * A held advisory lock.
 */
export class HeldLock {
  /** True once the connection was lost (the lock may be gone). */
  lost = false

  constructor(
    private client: pg.Client,
    /** The backend pid of the session holding the lock. */
    readonly pid: number,
    /** The lock's key (as given to `tryAcquire`). */
    readonly key: string
  ) {
    const onLost = () => {
      this.lost = true
    }
    client.on('error', onLost)
    client.on('end', onLost)
  }

  /**
   * A statement guarded by `heldBy(lock)` runs its writes only while this
   * session still holds the lock in the server's own view (pg_locks): a
   * write can never land after the lock is gone, whatever the client knows.
   */
  get fence(): { pid: number; key: string } {
    return { pid: this.pid, key: LOCK_PREFIX + this.key }
  }

  /**
   * Releases the lock (closing the connection releases it too).
   */
  async release() {
    await this.client.end().catch(() => {})
  }
}

/**
 * SQL condition (for a WHERE clause) true while the session `pid` holds the
 * advisory lock of `key`, with its two `?` bindings: see `HeldLock.fence`.
 */
export const HELD_BY_SQL = `EXISTS (
  SELECT 1 FROM pg_locks l
   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = ?
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(?, 0))`

/**
 * Takes and inspects advisory locks.
 */
export class AdvisoryLock {
  /**
   * Tries to take the lock `key` on the app's own database
   * (config/database.ts); null when another holder has it.
   */
  tryAcquire(key: string): Promise<HeldLock | null> {
    const connection = app.config.get<{ connectionString?: string }>(
      'database.connections.postgres.connection'
    )
    return this.tryAcquireOn(connection.connectionString!, key)
  }

  /**
   * Tries to take the lock `key` on the database at `connectionString`;
   * null when another holder has it.
   */
  async tryAcquireOn(connectionString: string, key: string): Promise<HeldLock | null> {
    const client = new pg.Client({ connectionString, application_name: 'rewrap-bg-lock' })
    await client.connect()
    try {
      const { rows } = await client.query(
        `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok, pg_backend_pid() AS pid`,
        [LOCK_PREFIX + key]
      )
      if (rows[0].ok) return new HeldLock(client, rows[0].pid, key)
    } catch (error) {
      await client.end().catch(() => {})
      throw error
    }
    await client.end()
    return null
  }

  /**
   * The backend pid of the session holding the lock `key` on the app's
   * database, or null when nobody holds it.
   */
  async holderPid(key: string): Promise<number | null> {
    const { rows } = await db.rawQuery(
      `SELECT l.pid FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(?, 0)`,
      [LOCK_PREFIX + key]
    )
    return rows[0] ? Number(rows[0].pid) : null
  }

  /**
   * Which of `keys` some session holds right now on the app's database: a
   * `running` run whose KEK is not among them belongs to a dead process.
   */
  async heldKeys(keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set()
    // A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
    const { rows } = await db.rawQuery(
      `SELECT k FROM unnest(?::text[]) AS k
        WHERE EXISTS (
          SELECT 1 FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND ((l.classid::bigint << 32) | l.objid::bigint)
                 = hashtextextended(k, 0))`,
      [keys.map((key) => LOCK_PREFIX + key)]
    )
    return new Set((rows as Array<{ k: string }>).map((row) => row.k.slice(LOCK_PREFIX.length)))
  }
}
