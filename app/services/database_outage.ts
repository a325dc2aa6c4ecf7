/*
|--------------------------------------------------------------------------
| Database outages of background runs
|--------------------------------------------------------------------------
|
| A rewrap or re-encrypt run rides through a short PostgreSQL outage
| (a restart, a failover, a cut connection) the way it rides through a KMS
| outage: the failed batch is not committed, the run's advisory lock went
| with its session, so the run waits for the database (bounded), takes
| its lock back — or stops if another process holds it now — and goes on
| from the cursor it committed last. Beyond the bound it stops with
| E_DATABASE_UNAVAILABLE; its row, still `running` (or `failed` when the
| database answered again in time to record it), is resumable.
|
*/
import logger from '@adonisjs/core/services/logger'
import { E_DATABASE_UNAVAILABLE, E_LOCK_LOST, errorCode } from '#app/errors'
import type { AdvisoryLock, HeldLock } from '#services/advisory_lock'
import type { Clock } from '#services/clock'

/** Node socket errors that mean the server could not be reached or went away. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

/** pg / knex messages of a connection that ended or could not be made. */
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'Connection ended unexpectedly',
  'Client has encountered a connection error and is not queryable',
  'Timeout acquiring a connection',
  'the database system is',
]

/**
 * True when `error` means "PostgreSQL cannot be reached right now" (and the
 * statement did not run): SQLSTATE class 08 (connection exception), 57P01–
 * 57P03 (shutdown, crash, cannot connect now), 53300 (too many
 * connections), socket errors and pg's own connection errors. A constraint
 * violation or a bad query is not.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const err = error as { code?: unknown; message?: unknown; errors?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true
  if (SOCKET_CODES.has(code)) return true
  // An AggregateError (connecting to every address of a host failed).
  if (Array.isArray(err.errors) && err.errors.some(isDatabaseUnavailable)) return true
  // pg and knex raise these as plain errors (no code): a TypeError or a RangeError is a bug.
  const name = (error as { name?: unknown }).name
  if (code !== '' || !['Error', 'KnexTimeoutError'].includes(String(name))) return false
  const message = typeof err.message === 'string' ? err.message : ''
  return CONNECTION_MESSAGES.some((text) => message.includes(text))
}

/** True for the failures a run rides through: the database gone, or its lock lost. */
export function isRecoverableRunFailure(error: unknown): boolean {
  return isDatabaseUnavailable(error) || errorCode(error) === 'E_LOCK_LOST'
}

/** `error` as E_DATABASE_UNAVAILABLE when it is an outage, else unchanged. */
export function asRunError(error: unknown): unknown {
  return isDatabaseUnavailable(error) ? new E_DATABASE_UNAVAILABLE([], { cause: error }) : error
}

/**
 * Takes the lock back after `lost`'s session ended: retries while the
 * database is unreachable or the server still shows the lock held by that
 * dead session (it notices a closed connection a moment later), for at most
 * `boundMs` in all (from `since`, ms). Throws E_LOCK_LOST when another
 * session holds the lock now (that process owns the run) and
 * E_DATABASE_UNAVAILABLE once the bound is spent.
 */
export async function retakeLock(
  locks: AdvisoryLock,
  lost: HeldLock,
  clock: Clock,
  boundMs: number,
  since: number,
  context: Record<string, unknown>
): Promise<HeldLock> {
  for (let attempt = 1; ; attempt++) {
    let failure: unknown
    try {
      const lock = await locks.tryAcquire(lost.key)
      if (lock) {
        logger.info({ ...context, attempt }, 'database back; lock taken again, run continues')
        return lock
      }
      const holder = await locks.holderPid(lost.key)
      if (holder !== null && holder !== lost.pid) throw new E_LOCK_LOST([])
      failure = new E_LOCK_LOST([])
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error
      failure = error
    }
    const elapsed = clock.now().getTime() - since
    if (elapsed >= boundMs) throw asRunError(failure)
    logger.warn({ ...context, attempt }, 'database unavailable or lock not yet released; waiting')
    await clock.sleep(Math.min(5_000, 100 * 2 ** Math.min(attempt, 6), boundMs - elapsed))
  }
}
