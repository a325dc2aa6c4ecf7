/*
|--------------------------------------------------------------------------
| Foreground detector
|--------------------------------------------------------------------------
|
| "Is anybody else using the database right now?" — the signal that turns
| the rewrap loop's nice ratio on. Counts the client sessions of this
| database, other than the asking one, that are running a statement or
| finished one within the last `windowMs`, leaving out the background
| work's own: sessions whose last statement carries BACKGROUND_TAG, and the
| sessions of background processes (application_name `rewrap-bg…`: Ace
| commands, the scheduler, rotation locks; see config/database.ts). Idle
| pool connections do not count either; the HTTP server's requests, other
| services and psql sessions do. Sampled at most every `intervalMs` (one cheap query on
| pg_stat_activity); on a failed sample it assumes foreground work.
|
*/
import db from '@adonisjs/lucid/services/db'
import type { Clock } from '#services/clock'
import type { ForegroundSignal } from '#services/throttle'

/** Leading SQL comment of every statement the background loops send. */
export const BACKGROUND_TAG = '/* rewrap:bg */'

/** Counts other recently active sessions; injectable for tests. */
export type SessionCounter = (windowMs: number) => Promise<number>

/**
 * Other client sessions of this database active within `windowMs`
 * (background statements left out).
 */
export const countForegroundSessions: SessionCounter = async (windowMs) => {
  const { rows } = await db.rawQuery(
    `${BACKGROUND_TAG} SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend'
        AND pid <> pg_backend_pid()
        AND (state = 'active' OR state_change > now() - make_interval(secs => ?))
        AND query NOT LIKE '/* rewrap:bg */%'
        AND application_name NOT LIKE 'rewrap-bg%'`,
    [windowMs / 1000]
  )
  return Number(rows[0].n)
}

/**
 * Samples the foreground sessions at most every `intervalMs`.
 */
export class ForegroundDetector implements ForegroundSignal {
  #sampledAt = Number.NEGATIVE_INFINITY
  #active = true

  constructor(
    private clock: Clock,
    private options: { intervalMs: number; windowMs: number },
    private count: SessionCounter = countForegroundSessions
  ) {}

  /** True when the last sample saw another active session (or could not be taken). */
  async active(): Promise<boolean> {
    const now = this.clock.now().getTime()
    if (now - this.#sampledAt < this.options.intervalMs) return this.#active
    this.#sampledAt = now
    try {
      this.#active = (await this.count(this.options.windowMs)) > 0
    } catch {
      this.#active = true
    }
    return this.#active
  }
}
