/*
|--------------------------------------------------------------------------
| Key rotation service
|--------------------------------------------------------------------------
|
| rotate(kek) = rotate the KEK once (the design's Step A: the KMS adds a
| version; new writes use it at once), then rewrap the stale rows (Step B,
| StaleRowRewrapper). One run per KEK at a time (advisory lock), resumable,
| cancellable between batches. Also what the admin API asks of runs:
| start in the background, cancel, list, find, and which are live.
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
  safeMessage,
} from '#app/errors'
import type { RewrapConfig } from '#config/rewrap'
import { KmsManager } from '#kms/kms_manager'
import { rotationParams } from '#app/governance/acts'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { ApprovalGate, type GovernedActRequest } from '#services/approval_gate'
import { Clock } from '#services/clock'
import { ChunkStore, type ChunkStats } from '#services/chunk_store'
import { DistributedRuns } from '#services/distributed_runs'
import { runUnderLock } from '#services/run_session'
import { rowsPerVersionOf } from '#services/entry_counts'
import { unthrottledRowsPerSecond } from '#services/quota_estimate'
import { pacingToStore } from '#services/pacing_options'
import { RotationStore, type RotationRun } from '#services/rotation_store'
import { RunPacingStore, type RunPacingView } from '#services/run_pacing'
import { StaleRowRewrapper, type RewrapOptions } from '#services/stale_row_rewrapper'

/** Options of a rotation. */
export interface RotateOptions extends RewrapOptions {
  /** Rotate the KEK first (default true; false = rewrap to the current latest). */
  rotate?: boolean
  /** Rewrap to this version instead of the latest (implies no KEK rotation). */
  targetVersion?: number
  /** Continue the KEK's unfinished run; never rotates the KEK again. */
  resume?: boolean
  batchSize?: number
  trigger?: RotationRun['trigger']
  requestedBy?: string | null
  /** Called once the run row exists (before the KEK is rotated), e.g. to answer 202 with its id. */
  onStarted?: (run: RotationRun) => void
  /** SAID of the approved request the rotation runs under (dual control; not needed to resume). */
  approval?: string
  /** Scheduler: `approval` is a standing-rotation policy for this cryptoperiod (not consumed). */
  standing?: { cryptoperiodMs: number }
  /**
   * Chunks as jobs: after Step A the run is cut into chunks put on the queue
   * for `rewrap:worker` processes; `rotate` then returns the run `running`
   * (follow it with `DistributedRuns.follow`).
   */
  distributed?: boolean
  /** Distributed runs: target rows per chunk (default config/rewrap.ts `distributed.chunkRows`). */
  chunkRows?: number
}

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
  /** The KMS's request ceiling in rows/s (cloud KMS quota), null when none. */
  quotaRowsPerSecond: number | null
  /** True when that ceiling, not the database, bounds the estimate. */
  quotaBound: boolean
  unfinishedRun: RotationRun | null
}

/**
 * Rotates KEKs and rewraps their DEKs.
 */
@inject()
export class KeyRotationService {
  constructor(
    private kms: KmsManager,
    private store: RotationStore,
    private locks: AdvisoryLock,
    private rewrapper: StaleRowRewrapper,
    private clock: Clock,
    private gate: ApprovalGate,
    private distributed: DistributedRuns,
    private chunks: ChunkStore,
    private pacingStore: RunPacingStore
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
    const rowsPerVersion = await rowsPerVersionOf(kekName, target)
    const staleRows = rowsPerVersion.reduce((sum, r) => sum + r.rows, 0)
    const config = this.#config()
    let rate = unthrottledRowsPerSecond({
      estimateRowsPerSecond: config.estimateRowsPerSecond,
      batchSize: options.batchSize ?? config.batchSize,
      sleepMs: options.sleepMs ?? config.sleepMs,
      maxRate: options.maxRate ?? config.maxRate,
    })
    const niceRatio = options.niceRatio ?? config.niceRatio
    let paced = Math.min(rate, config.estimateRowsPerSecond / (1 + Math.max(0, niceRatio)))
    const quota = driver.rewrapRowsPerSecondCeiling?.()
    const quotaBound = quota !== undefined && quota < rate
    if (quota !== undefined) {
      rate = Math.min(rate, quota)
      paced = Math.min(paced, quota)
    }
    return {
      kekName,
      latestVersion: info.latestVersion,
      targetVersion: target,
      rotatesKek: rotates,
      staleRows,
      rowsPerVersion,
      estimatedSeconds: Math.ceil(staleRows / rate),
      estimatedSecondsPaced: Math.ceil(staleRows / paced),
      quotaRowsPerSecond: quota ?? null,
      quotaBound,
      unfinishedRun: unfinished,
    }
  }

  /**
   * Rotates a KEK once and rewraps every stale DEK. Returns
   * the finished run: `completed` when every row is at the target,
   * `completed_with_errors` when the KMS rejected some rows (recorded,
   * retried by the next run), `cancelled` or `failed` (resumable). Rides
   * through a database outage or a lost lock up to `databaseOutageMs`
   * (app/services/database_outage.ts); beyond, E_DATABASE_UNAVAILABLE.
   */
  async rotate(kekName: string, options: RotateOptions = {}): Promise<RotationRun> {
    // Dual control: a new run needs its approval (resuming runs under the one that started it).
    const act = options.resume ? null : this.#act(kekName, options)
    if (act) await this.gate.check(act)
    return runUnderLock(this.locks, this.clock, {
      lockKey: lockKeys.rotation(kekName),
      busy: () => new E_ROTATION_IN_PROGRESS([kekName]),
      store: this.store,
      label: 'rotation',
      logContext: (run) => ({ kek: kekName, run: run.id }),
      open: () => this.#openRun(kekName, options, act),
      onStarted: options.onStarted,
      work: async (run, lock) => {
        run = await this.#rotateKekOnce(run)
        // Step A happened once, under the lock; the chunks go to the workers.
        if (options.distributed) return this.distributed.enqueueRotation(run)
        return this.rewrapper.rewrapStaleRows(run, options, lock)
      },
      databaseOutageMs: this.#config().databaseOutageMs,
    })
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
    const run = await this.find(runId)
    await this.store.requestCancel(runId)
    // A distributed run none of whose chunks is held stops now; else its workers stop it.
    if (run.options.distributed) await this.distributed.settle('rotation', runId)
    return (await this.store.find(runId))!
  }

  /**
   * Runs, newest first (`kek`: of one KEK; `limit`: 50 by default).
   */
  list(options: { kek?: string; limit?: number } = {}): Promise<RotationRun[]> {
    return this.store.list({ kekName: options.kek, limit: options.limit ?? 50 })
  }

  /**
   * One run; E_ROTATION_NOT_FOUND when unknown.
   */
  async find(runId: string): Promise<RotationRun> {
    const run = await this.store.find(runId)
    if (!run) throw new E_ROTATION_NOT_FOUND([runId])
    return run
  }

  /**
   * The KEKs of `runs`' `running` runs that a live process works on (it
   * holds the KEK's rotation lock); a running run of any other KEK is stalled.
   */
  async liveKeks(runs: RotationRun[]): Promise<Set<string>> {
    const running = runs.filter((run) => run.status === 'running')
    const keys = [...new Set(running.map((run) => run.kekName))]
    const held = await this.locks.heldKeys(keys.map(lockKeys.rotation))
    const live = new Set(keys.filter((kek) => held.has(lockKeys.rotation(kek))))
    // A distributed run holds no lock while its workers work: live while a chunk's lease is.
    const stats = await this.chunkStats(running)
    for (const run of running) {
      const chunks = stats.get(run.id)
      if (chunks && chunks.running > chunks.stalled) live.add(run.kekName)
    }
    return live
  }

  /** Chunk counts, stalled chunks and rows per worker of `runs`' distributed runs. */
  chunkStats(runs: RotationRun[]): Promise<Map<string, ChunkStats>> {
    const ids = runs.filter((run) => run.options.distributed === true).map((run) => run.id)
    return this.chunks.stats('rotation', ids)
  }

  /** The last pacing judgement of `runs`' running runs that have one (one query). */
  lastPacing(runs: RotationRun[]): Promise<Map<string, RunPacingView>> {
    return this.pacingStore.forRuns('rotation', runs)
  }

  /** The governed act a new rotation run is. */
  #act(kekName: string, options: RotateOptions): GovernedActRequest {
    return {
      action: 'rotate',
      kek: kekName,
      params: rotationParams(options),
      approval: options.approval,
      actor: options.requestedBy ?? options.trigger ?? 'cli',
      standing: options.standing,
    }
  }

  async #openRun(
    kekName: string,
    options: RotateOptions,
    act: GovernedActRequest | null
  ): Promise<RotationRun> {
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
        ...(options.distributed ? { distributed: true } : {}),
        ...(options.distributed && options.chunkRows ? { chunkRows: options.chunkRows } : {}),
        ...pacingToStore(options, config),
      },
      trigger: options.trigger ?? 'cli',
      requestedBy: options.requestedBy ?? null,
      authorize: act ? (trx, usedBy) => this.gate.consume(trx, act, usedBy) : undefined,
    })
  }

  /**
   * Rotates the KEK exactly once per run: a run persisted before the KMS call knows
   * the version it started from, so after a crash it can tell whether the
   * rotation already happened.
   */
  async #rotateKekOnce(run: RotationRun): Promise<RotationRun> {
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
}
