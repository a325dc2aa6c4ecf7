/*
|--------------------------------------------------------------------------
| Run session: the lock around a run, and riding through outages
|--------------------------------------------------------------------------
|
| The part of a run that is the same for every kind, around the engine's
| loop: take the run's advisory lock (or refuse), open or resume the run
| row, do the work; when the database goes away or the lock's session
| ends, wait for the database (bounded), take the lock back — or stop when
| another session holds it — and go on from the committed cursor; record
| any other stop as `failed` (resumable), only while still holding the lock.
|
*/
import logger from '@adonisjs/core/services/logger'
import { safeMessage } from '#app/errors'
import type { AdvisoryLock, HeldLock } from '#services/advisory_lock'
import type { Clock } from '#services/clock'
import { asRunError, isRecoverableRunFailure, retakeLock } from '#services/database_outage'
import type { EngineRun, RunStore } from '#services/run_engine'

/** What differs between the kinds around the loop. */
export interface RunSessionSpec<Run extends EngineRun> {
  /** The run's advisory lock (`lockKeys.*`). */
  lockKey: string
  /** The error when another session holds the lock. */
  busy: () => Error
  store: Pick<RunStore<Run, unknown, unknown>, 'find' | 'update'>
  /** Log fields naming the run. */
  logContext: (run: Run) => Record<string, unknown>
  label: string
  /** Opens a new run row or resumes the unfinished one (under the lock). */
  open: () => Promise<Run>
  /** Called once the run row exists. */
  onStarted?: (run: Run) => void
  /** The run's work from its committed state; called again after each recovery. */
  work: (run: Run, lock: HeldLock) => Promise<Run>
  /** How long to wait for the database and the lock (`rotation.databaseOutageMs`). */
  databaseOutageMs: number
}

/**
 * Runs `spec` under its lock, riding through database outages and lost
 * locks up to the bound; beyond it, E_DATABASE_UNAVAILABLE (resumable).
 */
export async function runUnderLock<Run extends EngineRun>(
  locks: AdvisoryLock,
  clock: Clock,
  spec: RunSessionSpec<Run>
): Promise<Run> {
  let lock: HeldLock | null = await locks.tryAcquire(spec.lockKey).catch((error) => {
    throw asRunError(error)
  })
  if (!lock) throw spec.busy()
  let run: Run | undefined
  try {
    run = await spec.open()
    spec.onStarted?.(run)
    for (;;) {
      try {
        return await spec.work(run, lock)
      } catch (error) {
        if (!isRecoverableRunFailure(error)) throw error
        // The database went away (and the lock with its session), or the lock alone:
        // wait for the database, take the lock back, go on from the committed cursor.
        const context = { ...spec.logContext(run), err: safeMessage(asRunError(error)) }
        logger.warn(context, `${spec.label} interrupted: database or lock lost; recovering`)
        const lost = lock
        await lost.release()
        lock = null
        lock = await retakeLock(
          locks,
          lost,
          clock,
          spec.databaseOutageMs,
          clock.now().getTime(),
          context
        )
        const current = await spec.store.find(run.id)
        if (!current || current.status !== 'running') return current ?? run
        run = current
      }
    }
  } catch (error) {
    // Record the stop only while holding the lock: without it, another process may own the run.
    if (run && lock && !lock.lost) {
      await spec.store
        .update(run.id, {
          status: 'failed',
          last_error: safeMessage(asRunError(error)),
          finished_at: null,
        })
        .catch(() => {})
    }
    throw asRunError(error)
  } finally {
    await lock?.release()
  }
}
