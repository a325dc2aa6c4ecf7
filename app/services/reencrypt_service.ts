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
| A run kind of the run engine (app/services/run_engine.ts), as rotation
| is: "prepare a batch" is the unwrap / open / wrap / seal below, the batch
| source and the fenced compare-and-swap commit are ReencryptStore's; the
| engine gives the passes, pacing, cancel (Ctrl-C, SIGTERM, the API), the
| KMS-outage bound and the lock checks; run_session.ts the database-outage
| ride-through. One run per source KEK at a time (advisory lock).
|
| Just over 400 lines: the run kind's per-batch crypto (which must zero
| every DEK and plaintext on every path) and the run's entry points read
| best together; its SQL lives in reencrypt_store.ts. The next split, when
| it grows: the per-batch crypto into its own file, as stale_row_rewrapper
| is for rotation.
|
*/
import { randomBytes } from 'node:crypto'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import { E_KEK_NOT_FOUND, E_REENCRYPT_NOT_FOUND, E_REENCRYPT_REFUSED, errorCode } from '#app/errors'
import { KEY_BYTES, NONCE_BYTES, type RandomBytes } from '#crypto/aead'
import { entryAad, openEnvelope, sealEnvelope } from '#crypto/envelope'
import { wrappedDekVersion } from '#crypto/wrapped_dek'
import type { RewrapConfig } from '#config/rewrap'
import type { KmsDriver } from '#kms/contract'
import { kmsError } from '#kms/error_codes'
import { KmsManager } from '#kms/kms_manager'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { Clock } from '#services/clock'
import { DekCache } from '#services/dek_cache'
import { ForegroundDetector } from '#services/foreground_detector'
import { pacingToStore, resolvePacing } from '#services/pacing_options'
import {
  ReencryptStore,
  type ReencryptedBatch,
  type ReencryptRun,
  type SourceRow,
} from '#services/reencrypt_store'
import { RunEngine, type EngineHooks, type EnginePacing, type RunKind } from '#services/run_engine'
import type { RunProgress } from '#services/run_progress'
import { runUnderLock } from '#services/run_session'
import { RunPacingStore, type RunPacingView } from '#services/run_pacing'
import { reencryptParams } from '#app/governance/acts'
import { ApprovalGate, type GovernedActRequest } from '#services/approval_gate'

export type { ReencryptFailure, ReencryptRun } from '#services/reencrypt_store'

/** Progress after every batch. */
export type ReencryptProgress = RunProgress<ReencryptRun>

/** Options of a re-encrypt run. */
export interface ReencryptOptions extends EngineHooks<ReencryptRun> {
  batchSize?: number
  sleepMs?: number
  /** Adaptive pacing: see config/rewrap.ts `rotation.niceRatio` (0 = full speed). */
  niceRatio?: number
  /** Pace by the foreground latency budget with this ratio (see config/rewrap.ts `rotation.pacing`). */
  latencyBudget?: number
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
  /** Randomness for DEKs and nonces (swappable in tests). */
  random: RandomBytes = randomBytes

  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private cache: DekCache,
    private locks: AdvisoryLock,
    private store: ReencryptStore,
    private gate: ApprovalGate,
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

    const kind = this.#kind(fromDriver, toDriver, { from, to })
    return runUnderLock(this.locks, this.clock, {
      lockKey: lockKeys.reencrypt(from),
      busy: () => new E_REENCRYPT_REFUSED([`a re-encrypt of "${from}" is already running`]),
      store: this.store,
      label: 're-encrypt',
      logContext: kind.logContext,
      open: () => this.#openRun(from, to, options, act),
      work: async (run, lock) => {
        if (options.distributed) {
          const { DistributedRuns } = await import('#services/distributed_runs')
          const distributed = await app.container.make(DistributedRuns)
          return distributed.enqueue('reencrypt', run)
        }
        return this.#engine().drive(kind, run, this.pacing(run, options), options, lock)
      },
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
    if (run.options.distributed) {
      const { DistributedRuns } = await import('#services/distributed_runs')
      const distributed = await app.container.make(DistributedRuns)
      await distributed.settle('reencrypt', runId)
    }
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

  #engine(): RunEngine {
    return new RunEngine(
      this.clock,
      new ForegroundDetector(this.clock, this.#rotationConfig().foreground)
    )
  }

  /** The re-encrypt run kind of `run` (its store; unwrap, open, fresh DEK, seal per batch). */
  async kind(run: ReencryptRun): Promise<RunKind<ReencryptRun, SourceRow, ReencryptedBatch>> {
    const fromDriver = await this.kms.forKek(run.fromKek)
    const toDriver = await this.kms.forKek(run.toKek)
    return this.#kind(fromDriver, toDriver, { from: run.fromKek, to: run.toKek })
  }

  /** Sizes, bounds and pacing of `run` (flags, then the run's options, then config/rewrap.ts). */
  pacing(run: ReencryptRun, options: ReencryptOptions): EnginePacing {
    const config = this.#config()
    const batchSize = Number(options.batchSize ?? run.options.batchSize ?? config.batchSize)
    return {
      batchSize,
      // Kept whole while paced, as before the engine (rotation's 100-row paced batches
      // were measured for rewrap only).
      pacedBatchSize: batchSize,
      sleepMs: Number(options.sleepMs ?? run.options.sleepMs ?? config.sleepMs),
      maxRate: 0,
      ...resolvePacing(options, run.options, this.#rotationConfig(), config.niceRatio),
      maxPasses: config.maxPasses,
      kmsOutageMs: this.#rotationConfig().kmsOutageMs,
      // One step at a time: the unwrapped DEKs and plaintexts of one batch only.
      overlap: false,
    }
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

  #kind(
    fromDriver: KmsDriver,
    toDriver: KmsDriver,
    keks: { from: string; to: string }
  ): RunKind<ReencryptRun, SourceRow, ReencryptedBatch> {
    return {
      label: 're-encrypt',
      store: this.store,
      logContext: (run) => ({ from: run.fromKek, to: run.toKek, run: run.id }),
      prepare: (run, rows) => this.#prepare(run, rows, fromDriver, toDriver),
      leftoverMessage: (run, remaining) =>
        `${remaining} rows still under "${run.fromKek}"; see reencrypt_failures`,
      afterCommit: (batch, outcome) => {
        for (const id of batch.prepared.ids) this.cache.forgetRow(id)
        if (outcome.failed > 0) {
          logger.warn(
            { ...keks, failed: outcome.failed },
            're-encrypt: rows could not be read; left in place'
          )
        }
      },
    }
  }

  /**
   * One batch: unwrap the old DEKs, open the payloads, fresh DEKs wrapped
   * by the target KEK, seal. Every DEK and plaintext is zeroed before it
   * returns or throws; the result holds ciphertexts and wrapped DEKs only.
   */
  async #prepare(
    run: ReencryptRun,
    rows: SourceRow[],
    fromDriver: KmsDriver,
    toDriver: KmsDriver
  ): Promise<ReencryptedBatch> {
    const { deks: oldDeks, codes } = await this.#unwrap(fromDriver, run.fromKek, rows)
    const pool = this.random(KEY_BYTES * rows.length)
    const nonces = this.random(NONCE_BYTES * rows.length)
    const plaintexts: Array<Buffer | null> = []
    try {
      rows.forEach((row, i) => {
        const dek = oldDeks[i]
        if (!dek) return plaintexts.push(null)
        try {
          plaintexts.push(openEnvelope(dek, row.ciphertext, entryAad(row.id, run.fromKek)))
        } catch (error) {
          codes[i] = errorCode(error)
          plaintexts.push(null)
        }
      })
      const okIndexes = rows.map((_, i) => i).filter((i) => plaintexts[i] !== null)
      const newDeks = okIndexes.map((i) => pool.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES))
      const wrapped = okIndexes.length > 0 ? await toDriver.wrap(run.toKek, newDeks) : []
      if (wrapped.length !== okIndexes.length) {
        throw kmsError('E_KMS_REJECTED', 'wrap answered an unexpected result', run.toKek)
      }
      const batch: ReencryptedBatch = {
        ids: [],
        oldWrapped: [],
        newWrapped: [],
        versions: [],
        ciphertexts: [],
        failedIds: [],
        failedCodes: [],
      }
      okIndexes.forEach((i, k) => {
        const version = wrappedDekVersion(wrapped[k])
        if (!version)
          throw kmsError('E_KMS_REJECTED', 'wrap answered an unexpected result', run.toKek)
        batch.ids.push(rows[i].id)
        batch.oldWrapped.push(rows[i].wrappedDek)
        batch.newWrapped.push(wrapped[k])
        batch.versions.push(version)
        batch.ciphertexts.push(
          sealEnvelope(
            newDeks[k],
            nonces.subarray(i * NONCE_BYTES, (i + 1) * NONCE_BYTES),
            plaintexts[i]!,
            entryAad(rows[i].id, run.toKek)
          )
        )
      })
      rows.forEach((row, i) => {
        if (plaintexts[i] !== null) return
        batch.failedIds.push(row.id)
        batch.failedCodes.push(codes[i] ?? 'E_KMS_REJECTED')
      })
      return batch
    } finally {
      pool.fill(0)
      for (const dek of oldDeks) dek?.fill(0)
      for (const plaintext of plaintexts) plaintext?.fill(0)
    }
  }

  /**
   * Unwraps a batch in one call; when the KMS refuses the batch for one bad
   * item, item by item (a bad item is null, with the KMS's error code).
   * Outages are thrown.
   */
  async #unwrap(
    driver: KmsDriver,
    kek: string,
    rows: SourceRow[]
  ): Promise<{ deks: Array<Buffer | null>; codes: Array<string | null> }> {
    try {
      const deks = await driver.unwrap(
        kek,
        rows.map((r) => r.wrappedDek)
      )
      return { deks, codes: deks.map(() => null) }
    } catch (error) {
      if (isOutage(error)) throw error
    }
    const deks: Array<Buffer | null> = []
    const codes: Array<string | null> = []
    try {
      for (const row of rows) {
        try {
          const [dek] = await driver.unwrap(kek, [row.wrappedDek])
          deks.push(dek)
          codes.push(null)
        } catch (error) {
          if (isOutage(error)) throw error
          deks.push(null)
          codes.push(errorCode(error))
        }
      }
    } catch (error) {
      // An outage midway: the DEKs unwrapped so far are not handed on; zero them.
      for (const dek of deks) dek?.fill(0)
      throw error
    }
    return { deks, codes }
  }
}

function isOutage(error: unknown): boolean {
  return errorCode(error) === 'E_KMS_UNAVAILABLE'
}
