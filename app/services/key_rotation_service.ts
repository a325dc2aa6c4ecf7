/*
|--------------------------------------------------------------------------
| Key rotation service
|--------------------------------------------------------------------------
|
| rotate(kek) = Step A (the KMS adds a version; new writes use it at once)
| then Step B: a keyset scan per stale version, in id order, batch by
| batch — one KMS rewrap call, one compare-and-swap UPDATE that also moves
| the run's cursor — with the next batch's read and rewrap overlapped with
| the current UPDATE. Resumable from the committed cursor, one run per
| KEK at a time (advisory lock), cancellable between batches. Only rewrap
| is ever asked of the KMS: no DEK is unwrapped, no payload decrypted.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import {
  E_KEK_NOT_FOUND,
  E_NO_ROTATION_TO_RESUME,
  E_ROTATION_IN_PROGRESS,
  E_ROTATION_INVALID,
  E_ROTATION_NOT_FOUND,
  E_ROTATION_UNFINISHED,
  errorCode,
  safeMessage,
} from '#app/errors'
import type { RewrapConfig } from '#config/rewrap'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { runProgress, type RunProgress } from '#services/run_progress'
import { RotationLock } from '#services/rotation_lock'
import {
  RotationStore,
  type CancelledBy,
  type RotationRun,
  type StaleRow,
} from '#services/rotation_store'
import { ForegroundDetector } from '#services/foreground_detector'
import { Throttle } from '#services/throttle'

/** Options of a rotation. */
export interface RotateOptions {
  /** Step A: rotate the KEK first (default true; false = rewrap to the current latest). */
  rotate?: boolean
  /** Rewrap to this version instead of the latest (implies no Step A). */
  targetVersion?: number
  /** Continue the KEK's unfinished run; never rotates the KEK again. */
  resume?: boolean
  batchSize?: number
  sleepMs?: number
  maxRate?: number
  /** Adaptive pacing: see config/rewrap.ts `rotation.niceRatio` (0 = full speed). */
  niceRatio?: number
  trigger?: RotationRun['trigger']
  requestedBy?: string | null
  /** Called once the run row exists (before Step A), e.g. to answer 202 with its id. */
  onStarted?: (run: RotationRun) => void
  /** Progress after every batch. */
  onProgress?: (progress: RotationProgress) => void | Promise<void>
  /**
   * Aborting finishes the current batch and leaves the run resumable. Abort
   * with the reason `'operator'` for a person's stop (the run then stays
   * paused: the scheduler leaves it alone); any other reason is a shutdown.
   */
  signal?: AbortSignal
}

/** Progress of a running rotation. */
export type RotationProgress = RunProgress<RotationRun>

/** What a dry run reports. */
export interface RotationPlan {
  kekName: string
  latestVersion: number
  targetVersion: number
  rotatesKek: boolean
  staleRows: number
  rowsPerVersion: Array<{ version: number; rows: number }>
  /** At full speed (nobody else on the database). */
  estimatedSeconds: number
  /** While other sessions use the database (paced by the nice ratio). */
  estimatedSecondsPaced: number
  unfinishedRun: RotationRun | null
}

interface PreparedBatch {
  version: number
  rows: StaleRow[]
  results: Awaited<ReturnType<KmsDriver['rewrap']>>
}

/**
 * Rotates KEKs and rewraps their DEKs.
 */
@inject()
export class KeyRotationService {
  /** Run persistence (swappable in tests). */
  store = new RotationStore()

  constructor(
    private kms: KmsManager,
    private clock: Clock
  ) {}

  #config(): RewrapConfig['rotation'] {
    return app.config.get<RewrapConfig>('rewrap').rotation
  }

  /**
   * What a rotation would do: counts and an estimate; changes nothing.
   */
  async plan(kekName: string, options: RotateOptions = {}): Promise<RotationPlan> {
    const driver = await this.kms.forKek(kekName)
    const info = await driver.readKey(kekName)
    if (!info) throw new E_KEK_NOT_FOUND([kekName])
    const unfinished = await this.store.findUnfinished(kekName)
    const rotates =
      !options.resume && options.targetVersion === undefined && options.rotate !== false
    let target = options.targetVersion ?? (rotates ? info.latestVersion + 1 : info.latestVersion)
    if (options.resume && unfinished?.targetVersion) target = unfinished.targetVersion
    const { default: db } = await import('@adonisjs/lucid/services/db')
    const { rows } = await db.rawQuery(
      `SELECT kek_version AS version, count(*)::bigint AS rows FROM vault_entries
        WHERE kek_name = ? AND kek_version < ? GROUP BY kek_version ORDER BY kek_version`,
      [kekName, target]
    )
    const rowsPerVersion = rows.map((r: any) => ({ version: r.version, rows: Number(r.rows) }))
    const staleRows = rowsPerVersion.reduce((sum: number, r: { rows: number }) => sum + r.rows, 0)
    const config = this.#config()
    const batchSize = options.batchSize ?? config.batchSize
    const sleepMs = options.sleepMs ?? config.sleepMs
    const maxRate = options.maxRate ?? config.maxRate
    let rate = config.estimateRowsPerSecond
    if (sleepMs > 0) rate = Math.min(rate, (batchSize * 1000) / sleepMs)
    if (maxRate > 0) rate = Math.min(rate, maxRate)
    const niceRatio = options.niceRatio ?? config.niceRatio
    const paced = Math.min(rate, config.estimateRowsPerSecond / (1 + Math.max(0, niceRatio)))
    return {
      kekName,
      latestVersion: info.latestVersion,
      targetVersion: target,
      rotatesKek: rotates,
      staleRows,
      rowsPerVersion,
      estimatedSeconds: Math.ceil(staleRows / rate),
      estimatedSecondsPaced: Math.ceil(staleRows / paced),
      unfinishedRun: unfinished,
    }
  }

  /**
   * Rotates a KEK (Step A) and rewraps every stale DEK (Step B). Returns
   * the finished run: `completed` when every row is at the target,
   * `completed_with_errors` when the KMS rejected some rows (recorded,
   * retried by the next run), `cancelled` or `failed` (resumable).
   */
  async rotate(kekName: string, options: RotateOptions = {}): Promise<RotationRun> {
    const lock = await RotationLock.tryAcquireForApp(kekName)
    if (!lock) throw new E_ROTATION_IN_PROGRESS([kekName])
    let run: RotationRun | undefined
    try {
      run = await this.#openRun(kekName, options)
      options.onStarted?.(run)
      run = await this.#stepA(run)
      return await this.#stepB(run, options, lock)
    } catch (error) {
      if (run && run.status === 'running') {
        await this.store
          .update(run.id, { status: 'failed', last_error: safeMessage(error), finished_at: null })
          .catch(() => {})
      }
      throw error
    } finally {
      await lock.release()
    }
  }

  /**
   * Starts a rotation in the background; resolves with the run as soon as
   * its row exists (errors before that — lock, unfinished run, unknown KEK —
   * reject). The rest of the run continues in this process.
   */
  start(kekName: string, options: RotateOptions = {}): Promise<RotationRun> {
    return new Promise((resolve, reject) => {
      let started = false
      this.rotate(kekName, {
        ...options,
        onStarted: (run) => {
          started = true
          resolve(run)
        },
      })
        .then((run) => {
          if (!started) resolve(run)
        })
        .catch((error) => {
          if (!started) return reject(error)
          logger.error({ kek: kekName, err: safeMessage(error) }, 'background rotation failed')
        })
    })
  }

  /**
   * Asks a running run to stop after its current batch (any process).
   */
  async cancel(runId: string): Promise<RotationRun> {
    const run = await this.store.find(runId)
    if (!run) throw new E_ROTATION_NOT_FOUND([runId])
    await this.store.requestCancel(runId)
    return (await this.store.find(runId))!
  }

  async #openRun(kekName: string, options: RotateOptions): Promise<RotationRun> {
    const unfinished = await this.store.findUnfinished(kekName)
    if (options.resume) {
      if (!unfinished) throw new E_NO_ROTATION_TO_RESUME([kekName])
      return this.store.update(unfinished.id, {
        status: 'running',
        cancel_requested: false,
        cancelled_by: null,
        last_error: null,
        finished_at: null,
      })
    }
    if (unfinished) throw new E_ROTATION_UNFINISHED([kekName, unfinished.id])

    const driver = await this.kms.forKek(kekName)
    const info = await driver.readKey(kekName)
    if (!info) throw new E_KEK_NOT_FOUND([kekName])
    const explicit = options.targetVersion
    if (explicit !== undefined) {
      if (!Number.isInteger(explicit) || explicit < 1 || explicit > info.latestVersion) {
        throw new E_ROTATION_INVALID([
          `target version ${explicit} must be between 1 and the latest version ${info.latestVersion}`,
        ])
      }
    }
    const rotateKek = explicit === undefined && options.rotate !== false
    const config = this.#config()
    return this.store.createRun({
      kekName,
      baseVersion: info.latestVersion,
      targetVersion: rotateKek ? null : (explicit ?? info.latestVersion),
      rotateKek,
      options: {
        batchSize: options.batchSize ?? config.batchSize,
        sleepMs: options.sleepMs ?? config.sleepMs,
        maxRate: options.maxRate ?? config.maxRate,
        niceRatio: options.niceRatio ?? config.niceRatio,
      },
      trigger: options.trigger ?? 'cli',
      requestedBy: options.requestedBy ?? null,
    })
  }

  /**
   * Step A, exactly once per run: a run persisted before the KMS call knows
   * the version it started from, so after a crash it can tell whether the
   * rotation already happened.
   */
  async #stepA(run: RotationRun): Promise<RotationRun> {
    if (run.targetVersion !== null) return run
    const driver = await this.kms.forKek(run.kekName)
    const info = await driver.readKey(run.kekName)
    if (!info) throw new E_KEK_NOT_FOUND([run.kekName])
    let target = info.latestVersion
    if (target <= run.baseVersion) {
      const rotated = await driver.rotateKey(run.kekName)
      target = rotated.latestVersion
    }
    logger.info(
      { kek: run.kekName, run: run.id, target },
      'KEK rotated; new writes use the new version'
    )
    return this.store.update(run.id, { target_version: target })
  }

  async #stepB(run: RotationRun, options: RotateOptions, lock: RotationLock): Promise<RotationRun> {
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
        const stopping = options.signal?.aborted || lock.lost
        // Full speed: the next batch's SELECT + rewrap overlaps this UPDATE. Paced (the
        // database serves other work): one step at a time, so the loop never keeps two
        // cores busy while requests are waiting for one.
        const overlap = !throttle.paced
        if (!stopping && overlap) {
          prepared = this.#prepare(driver, run, cursorVersion, cursorId, target, batchSize)
          // Awaited after the commit below; handled now so a failure is not "unhandled".
          prepared.catch(() => {})
        }
        const commit = await this.#commit(run, target, batch, cursorVersion, cursorId)
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
    cursorId: string
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
    })
    return {
      updated: commit.updated,
      skipped: ids.length - commit.updated,
      failed: failedIds.length,
      cancelRequested: commit.cancelRequested,
    }
  }
}
