/*
|--------------------------------------------------------------------------
| Rotation lock
|--------------------------------------------------------------------------
|
| One rotation per KEK at a time, across processes and machines: a
| Postgres session advisory lock held on a dedicated connection for the
| whole run. If the process dies, its connection closes and the lock goes
| with it; the run row stays `running` and is resumable.
|
*/
import pg from 'pg'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'

/** Lock keys are `hashtextextended(LOCK_PREFIX || key, 0)`: one formula for taking and checking. */
const LOCK_PREFIX = 'rewrap:rotation:'

/**
 * A held rotation lock.
 */
export class RotationLock {
  /** True once the connection was lost (the lock may be gone). */
  lost = false

  private constructor(private client: pg.Client) {
    client.on('error', () => {
      this.lost = true
    })
  }

  /**
   * Tries to take the lock of a KEK; null when another holder has it.
   */
  static async tryAcquire(connectionString: string, kekName: string): Promise<RotationLock | null> {
    const client = new pg.Client({ connectionString, application_name: 'rewrap-bg-lock' })
    await client.connect()
    try {
      const { rows } = await client.query(
        `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`,
        [LOCK_PREFIX + kekName]
      )
      if (rows[0].ok) return new RotationLock(client)
    } catch (error) {
      await client.end().catch(() => {})
      throw error
    }
    await client.end()
    return null
  }

  /**
   * Tries to take a lock on the app's own database (config/database.ts).
   */
  static tryAcquireForApp(key: string): Promise<RotationLock | null> {
    const connection = app.config.get<{ connectionString?: string }>(
      'database.connections.postgres.connection'
    )
    return RotationLock.tryAcquire(connection.connectionString!, key)
  }

  /**
   * Which of `keys` some session holds right now on the app's database: a
   * `running` run whose KEK is not among them belongs to a dead process.
   */
  static async heldKeys(keys: string[]): Promise<Set<string>> {
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

  /**
   * Releases the lock (closing the connection releases it too).
   */
  async release() {
    await this.client.end().catch(() => {})
  }
}
