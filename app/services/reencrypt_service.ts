/*
|--------------------------------------------------------------------------
| Re-encrypt service (recovery for a compromised KEK)
|--------------------------------------------------------------------------
|
| Moves every row of KEK `from` to KEK `to`: per row the old DEK is
| unwrapped, the payload opened, a FRESH DEK generated and wrapped by `to`,
| and the payload sealed again under it with the new associated data
| (kek_name = `to`). Rewrapping alone would not do: whoever holds the
| compromised KEK could have unwrapped the old DEKs.
|
| The run's entry points: approval (dual control), the lock, resume,
| cancel, listing. The per-batch work is a run kind of the run engine
| (app/services/run_engine.ts) in row_reencrypter.ts, as
| stale_row_rewrapper.ts is for rotation: the engine gives the passes,
| pacing, cancel (Ctrl-C, SIGTERM, the API), the KMS-outage bound and the
| lock checks; run_session.ts the database-outage ride-through; a
| distributed run goes to distributed_runs.ts. One run per source KEK at a
| time (advisory lock). Its SQL lives in reencrypt_store.ts.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import { E_KEK_NOT_FOUND, E_REENCRYPT_NOT_FOUND, E_REENCRYPT_REFUSED } from '#app/errors'
import type { RewrapConfig } from '#config/rewrap'
import { KmsManager } from '#kms/kms_manager'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { Clock } from '#services/clock'
import { DistributedRuns } from '#services/distributed_runs'
import { pacingToStore } from '#services/pacing_options'
import { ReencryptStore, type ReencryptRun } from '#services/reencrypt_store'
import { RowReencrypter, type ReencryptRowsOptions } from '#services/row_reencrypter'
import type { RunProgress } from '#services/run_progress'
import { runUnderLock } from '#services/run_session'
import { RunPacingStore, type RunPacingView } from '#services/run_pacing'
import { reencryptParams } from '#app/governance/acts'
import { ApprovalGate, type GovernedActRequest } from '#services/approval_gate'

export type { ReencryptFailure, ReencryptRun } from '#services/reencrypt_store'

/** Progress after every batch. */
export type ReencryptProgress = RunProgress<ReencryptRun>

/** Options of a re-encrypt run. */
export interface ReencryptOptions extends ReencryptRowsOptions {
  /**
   * Aborting finishes the current batch and leaves the run resumable (reason
   * `'operator'`: a person's stop; anything else: a shutdown).
   */
  signal?: AbortSignal
  onProgress?: (progress: ReencryptProgress) => void | Promise<void>
  /** SAID of the approved request a new run starts under (dual control; not needed to resume). */
  approval?: string
  /** Who asks (OS user, token name); `cli` by default. */
  actor?: string
  /**
   * Chunks as jobs (as `RotateOptions.distributed`): the run is cut into
   * chunks for `rewrap:worker` processes; returns it `running`.
   */
  distributed?: boolean
  /** Distributed runs: target rows per chunk. */
  chunkRows?: number
}

/**
 * Re-encrypts every row of one KEK under another.
 */
@inject()
export class ReencryptService {
  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private locks: AdvisoryLock,
    private store: ReencryptStore,
    private gate: ApprovalGate,
    private rows: RowReencrypter,
    private distributed: DistributedRuns,
    private pacingStore: RunPacingStore
  ) {}

  #config(): RewrapConfig['lifecycle']['reencrypt'] {
    return app.config.get<RewrapConfig>('rewrap').lifecycle.reencrypt
  }

  #rotationConfig(): RewrapConfig['rotation'] {
    return app.config.get<RewrapConfig>('rewrap').rotation
  }

  /**
   * Re-encrypts every row of `from` under `to`, resuming the unfinished run
   * of `from` when there is one. Returns the finished run: `completed`
   * when no row is left under `from`, `completed_with_errors` when some
   * rows could not be read (left in place; rerun to retry), `cancelled`
   * (signal or cancel(); resumable) or throws (the run is left `failed`,
   * resumable). Rides through a database outage or a lost lock up to
   * `rotation.databaseOutageMs`, a KMS outage up to `rotation.kmsOutageMs`.
   */
  async reencrypt(from: string, to: string, options: ReencryptOptions = {}) {
    if (from === to) throw new E_REENCRYPT_REFUSED(['--from and --to name the same KEK'])
    const fromDriver = await this.kms.forKek(from)
    const toDriver = await this.kms.forKek(to)
    if (!(await fromDriver.readKey(from))) throw new E_KEK_NOT_FOUND([from])
    if (!(await toDriver.readKey(to))) throw new E_KEK_NOT_FOUND([to])
    // Dual control: a new run needs its approval (resuming runs under the one that started it).
    const act: GovernedActRequest = {
      action: 'reencrypt',
      kek: from,
      params: reencryptParams(to),
      approval: options.approval,
      actor: options.actor ?? 'cli',
    }
    if (!(await this.findUnfinished(from))) await this.gate.check(act)

    return runUnderLock(this.locks, this.clock, {
      lockKey: lockKeys.reencrypt(from),
      busy: () => new E_REENCRYPT_REFUSED([`a re-encrypt of "${from}" is already running`]),
      store: this.store,
      label: 're-encrypt',
      logContext: (run) => this.rows.logContext(run),
      open: () => this.#openRun(from, to, options, act),
      work: (run, lock) =>
        options.distributed
          ? this.distributed.enqueue('reencrypt', run)
          : this.rows.reencryptRows(run, options, lock),
      databaseOutageMs: this.#rotationConfig().databaseOutageMs,
    })
  }

  /**
   * Asks a running run to stop after its current batch (any process; the
   * run ends `cancelled` by `operator`, resumable). E_REENCRYPT_NOT_FOUND
   * when unknown.
   */
  async cancel(runId: string): Promise<ReencryptRun> {
    const run = await this.find(runId)
    await this.store.requestCancel(runId)
    if (run.options.distributed) await this.distributed.settle('reencrypt', runId)
    return this.find(runId)
  }

  /** One run; E_REENCRYPT_NOT_FOUND when unknown. */
  async find(runId: string): Promise<ReencryptRun> {
    const run = await this.store.find(runId)
    if (!run) throw new E_REENCRYPT_NOT_FOUND([runId])
    return run
  }

  /** Runs, newest first (`from`: of one source KEK; `limit`: 50 by default). */
  list(options: { from?: string; limit?: number } = {}): Promise<ReencryptRun[]> {
    return this.store.list({ from: options.from, limit: options.limit ?? 50 })
  }

  /**
   * The source KEKs of `runs`' `running` runs that a live process works on
   * (it holds the re-encrypt lock); a running run of any other is stalled.
   */
  async liveSources(runs: ReencryptRun[]): Promise<Set<string>> {
    const running = [...new Set(runs.filter((r) => r.status === 'running').map((r) => r.fromKek))]
    const held = await this.locks.heldKeys(running.map(lockKeys.reencrypt))
    return new Set(running.filter((kek) => held.has(lockKeys.reencrypt(kek))))
  }

  /** The last pacing judgement of `runs`' running runs that have one (one query). */
  lastPacing(runs: ReencryptRun[]): Promise<Map<string, RunPacingView>> {
    return this.pacingStore.forRuns('re-encrypt', runs)
  }

  /** The newest unfinished run of a source KEK, or null. */
  findUnfinished(from: string): Promise<ReencryptRun | null> {
    return this.store.findUnfinished(from)
  }

  /** Rows a run could not move, by entry id (at most `limit`). */
  failures(runId: string, limit = 1000) {
    return this.store.failures(runId, limit)
  }

  async #openRun(
    from: string,
    to: string,
    options: ReencryptOptions,
    act: GovernedActRequest
  ): Promise<ReencryptRun> {
    const config = this.#config()
    const unfinished = await this.store.findUnfinished(from)
    if (unfinished && unfinished.toKek !== to) {
      throw new E_REENCRYPT_REFUSED([
        `run #${unfinished.id} moves "${from}" to "${unfinished.toKek}": finish it with --to ${unfinished.toKek}`,
      ])
    }
    const remaining = await this.store.countRemaining({ fromKek: from })
    if (unfinished) {
      const done = unfinished.reencrypted + unfinished.skipped + unfinished.failed
      logger.info({ from, to, run: unfinished.id }, 're-encrypt resumed')
      return this.store.update(unfinished.id, {
        status: 'running',
        cancel_requested: false,
        cancelled_by: null,
        last_error: null,
        total_rows: done + remaining,
      })
    }
    const run = await this.store.createRun({
      fromKek: from,
      toKek: to,
      totalRows: remaining,
      options: {
        batchSize: options.batchSize ?? config.batchSize,
        sleepMs: options.sleepMs ?? config.sleepMs,
        niceRatio: options.niceRatio ?? config.niceRatio,
        ...(options.distributed ? { distributed: true } : {}),
        ...(options.distributed && options.chunkRows ? { chunkRows: options.chunkRows } : {}),
        ...pacingToStore(options, this.#rotationConfig()),
      },
      authorize: (trx, usedBy) => this.gate.consume(trx, act, usedBy),
    })
    logger.info({ from, to, run: run.id, total: remaining }, 're-encrypt started')
    return run
  }
}
