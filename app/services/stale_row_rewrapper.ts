/*
|--------------------------------------------------------------------------
| Stale row rewrapper
|--------------------------------------------------------------------------
|
| The rewrap half of a rotation run (the design's Step B): a keyset scan
| per stale version, in id order, batch by batch — one KMS rewrap call,
| one compare-and-swap UPDATE that also moves the run's cursor — with the
| next batch's read and rewrap overlapped with the current UPDATE while
| nobody else uses the database, paced otherwise. Resumable from the
| committed cursor, cancellable between batches. Only rewrap is ever
| asked of the KMS: no DEK is unwrapped, no payload decrypted.
|
| Over 300 lines: kept whole until rotation and re-encrypt share one run
| engine (issue: scale-out).
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import { E_LOCK_LOST, errorCode } from '#app/errors'
import type { RewrapConfig } from '#config/rewrap'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import type { HeldLock } from '#services/advisory_lock'
import { Clock } from '#services/clock'
import { ForegroundDetector } from '#services/foreground_detector'
import { runProgress, type RunProgress } from '#services/run_progress'
import {
  RotationStore,
  type CancelledBy,
  type RotationRun,
  type StaleRow,
} from '#services/rotation_store'
import { Throttle } from '#services/throttle'

/** Progress of a running rotation. */
export type RotationProgress = RunProgress<RotationRun>

/** Pacing, progress and stop signal of a rewrap (a rotation's own options). */
export interface RewrapOptions {
  sleepMs?: number
  maxRate?: number
  /** Adaptive pacing: see config/rewrap.ts `rotation.niceRatio` (0 = full speed). */
  niceRatio?: number
  /** Progress after every batch. */
  onProgress?: (progress: RotationProgress) => void | Promise<void>
  /**
   * Aborting finishes the current batch and leaves the run resumable. Abort
   * with the reason `'operator'` for a person's stop (the run then stays
   * paused: the scheduler leaves it alone); any other reason is a shutdown.
   */
  signal?: AbortSignal
}

interface PreparedBatch {
  version: number
  rows: StaleRow[]
  results: Awaited<ReturnType<KmsDriver['rewrap']>>
}

/**
 * Rewraps the stale rows of a rotation run.
 */
@inject()
export class StaleRowRewrapper {
  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private store: RotationStore
  ) {}

  #config(): RewrapConfig['rotation'] {
    return app.config.get<RewrapConfig>('rewrap').rotation
  }

  /**
   * Rewraps every row of `run`'s KEK below its target version, batch by
   * batch from the run's cursor, then passes again over rows written at
   * an old version meanwhile (bounded). Ends the run `completed`,
   * `completed_with_errors` or `cancelled` (resumable), and returns it.
   * Throws E_LOCK_LOST (nothing of the batch written) once `lock`'s session
   * is gone, and the database's errors while it is unreachable.
   */
  async rewrapStaleRows(
    run: RotationRun,
    options: RewrapOptions,
    lock: HeldLock
  ): Promise<RotationRun> {
    const config = this.#config()
    const target = run.targetVersion!
    const batchSize = Number(run.options.batchSize ?? config.batchSize)
    const throttle = new Throttle(
      this.clock,
      {
        sleepMs: Number(options.sleepMs ?? run.options.sleepMs ?? config.sleepMs),
        maxRate: Number(options.maxRate ?? run.options.maxRate ?? config.maxRate),
        niceRatio: Number(options.niceRatio ?? run.options.niceRatio ?? config.niceRatio),
      },
      new ForegroundDetector(this.clock, config.foreground)
    )
    const driver = await this.kms.forKek(run.kekName)
    const startedAt = this.clock.now().getTime()
    let doneHere = 0
    const priorDone = run.rewrapped + run.skipped + run.failed
    run = await this.store.update(run.id, {
      total_rows: priorDone + (await this.store.countStale(run.kekName, target)),
    })
    logger.info({ kek: run.kekName, run: run.id, target, total: run.totalRows }, 'rewrap started')

    let cursorVersion = run.cursorVersion
    let cursorId = run.cursorId
    for (;;) {
      let failedThisPass = 0
      let prepared = this.#prepare(driver, run, cursorVersion, cursorId, target, batchSize)
      for (;;) {
        const batch = await prepared
        if (!batch) break
        const last = batch.rows[batch.rows.length - 1].id
        cursorVersion = batch.version
        cursorId = last
        // The lock's session ended: stop before writing (rotate() takes it back or stops).
        if (lock.lost) throw new E_LOCK_LOST([])
        const stopping = options.signal?.aborted
        // Full speed: the next batch's SELECT + rewrap overlaps this UPDATE. Paced (the
        // database serves other work): one step at a time, so the loop never keeps two
        // cores busy while requests are waiting for one.
        const overlap = !throttle.paced
        if (!stopping && overlap) {
          prepared = this.#prepare(driver, run, cursorVersion, cursorId, target, batchSize)
          // Awaited after the commit below; handled now so a failure is not "unhandled".
          prepared.catch(() => {})
        }
        const commit = await this.#commit(run, target, batch, cursorVersion, cursorId, lock)
        failedThisPass += commit.failed
        doneHere += batch.rows.length
        run = {
          ...run,
          cursorVersion,
          cursorId,
          rewrapped: run.rewrapped + commit.updated,
          skipped: run.skipped + commit.skipped,
          failed: run.failed + commit.failed,
        }
        await options.onProgress?.(
          runProgress(run, priorDone + doneHere, doneHere, startedAt, this.clock.now().getTime())
        )
        if (stopping || commit.cancelRequested || options.signal?.aborted) {
          if (!stopping) await prepared.catch(() => null)
          const by: CancelledBy =
            commit.cancelRequested || options.signal?.reason === 'operator'
              ? 'operator'
              : 'shutdown'
          logger.info({ kek: run.kekName, run: run.id, by }, 'rotation cancelled; resumable')
          return this.store.update(run.id, {
            status: 'cancelled',
            cancel_requested: false,
            cancelled_by: by,
          })
        }
        await throttle.afterBatch(batch.rows.length)
        if (throttle.paced === overlap) {
          // Switched (overlap was !paced before this batch): log switches, not every batch.
          logger.info(
            { kek: run.kekName, run: run.id, paced: throttle.paced },
            throttle.paced
              ? 'rewrap paced: other sessions use the database'
              : 'rewrap at full speed: no other sessions'
          )
        }
        if (!overlap) {
          // Paced: shorter bursts of database work between the sleeps.
          const size = throttle.paced ? Math.min(batchSize, config.pacedBatchSize) : batchSize
          prepared = this.#prepare(driver, run, cursorVersion, cursorId, target, size)
        }
      }

      const remaining = await this.store.countStale(run.kekName, target)
      if (remaining === 0) {
        const final = await this.store.update(run.id, {
          status: 'completed',
          finished_at: this.clock.now(),
        })
        logger.info(
          { kek: run.kekName, run: run.id, rewrapped: final.rewrapped },
          'rotation completed'
        )
        return final
      }
      if (remaining <= failedThisPass || run.pass >= config.maxPasses) {
        const final = await this.store.update(run.id, {
          status: 'completed_with_errors',
          finished_at: this.clock.now(),
          last_error: `${remaining} rows still below version ${target}; see key_rotation_failures`,
        })
        logger.warn({ kek: run.kekName, run: run.id, remaining }, 'rotation completed with errors')
        return final
      }
      // Rows written at an older version while the scan ran: another pass.
      cursorVersion = 0
      cursorId = '0'
      run = await this.store.update(run.id, {
        pass: run.pass + 1,
        cursor_version: 0,
        cursor_id: 0,
        total_rows: run.totalRows + remaining,
      })
    }
  }

  /**
   * Reads the next batch after the cursor (moving to the next stale version
   * when one is exhausted) and rewraps it. Null when nothing is left.
   */
  async #prepare(
    driver: KmsDriver,
    run: RotationRun,
    version: number,
    afterId: string,
    target: number,
    batchSize: number
  ): Promise<PreparedBatch | null> {
    let current = version
    let after = afterId
    for (;;) {
      if (current === 0) {
        const next = await this.store.nextStaleVersion(run.kekName, 0, target)
        if (next === null) return null
        current = next
        after = '0'
      }
      const rows = await this.store.readBatch(run.kekName, current, after, batchSize)
      if (rows.length > 0) {
        const results = await this.#rewrapWithOutageBound(driver, run, rows, target)
        return { version: current, rows, results }
      }
      const next = await this.store.nextStaleVersion(run.kekName, current + 1, target)
      if (next === null) return null
      current = next
      after = '0'
    }
  }

  /**
   * The driver already retries each request a bounded number of times;
   * this keeps trying through a longer KMS outage, up to `kmsOutageMs`.
   */
  async #rewrapWithOutageBound(
    driver: KmsDriver,
    run: RotationRun,
    rows: StaleRow[],
    target: number
  ) {
    const bound = this.#config().kmsOutageMs
    const started = this.clock.now().getTime()
    for (let attempt = 1; ; attempt++) {
      try {
        return await driver.rewrap(
          run.kekName,
          rows.map((r) => r.wrappedDek),
          target
        )
      } catch (error) {
        const code = errorCode(error)
        const elapsed = this.clock.now().getTime() - started
        if (code !== 'E_KMS_UNAVAILABLE' || elapsed >= bound) throw error
        logger.warn({ kek: run.kekName, run: run.id, attempt }, 'KMS unavailable; backing off')
        await this.clock.sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6), bound - elapsed))
      }
    }
  }

  async #commit(
    run: RotationRun,
    target: number,
    batch: PreparedBatch,
    cursorVersion: number,
    cursorId: string,
    lock: HeldLock
  ) {
    const ids: string[] = []
    const oldWrapped: string[] = []
    const newWrapped: string[] = []
    const failedIds: string[] = []
    const failedCodes: string[] = []
    batch.rows.forEach((row, index) => {
      const result = batch.results[index]
      if (result.ok) {
        ids.push(row.id)
        oldWrapped.push(row.wrappedDek)
        newWrapped.push(result.wrapped)
      } else {
        failedIds.push(row.id)
        failedCodes.push(result.code)
      }
    })
    const commit = await this.store.commitBatch({
      runId: run.id,
      target,
      cursorVersion,
      cursorId,
      ids,
      oldWrapped,
      newWrapped,
      failedIds,
      failedCodes,
      fence: lock.fence,
    })
    return {
      updated: commit.updated,
      skipped: ids.length - commit.updated,
      failed: failedIds.length,
      cancelRequested: commit.cancelRequested,
    }
  }
}
