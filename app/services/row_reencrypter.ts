/*
|--------------------------------------------------------------------------
| Row re-encrypter
|--------------------------------------------------------------------------
|
| The per-batch half of a re-encrypt run as a run kind of the run engine
| (app/services/run_engine.ts), as stale_row_rewrapper.ts is for rotation:
| "prepare a batch" unwraps the old DEKs, opens the payloads, wraps FRESH
| DEKs by the target KEK and seals the payloads again under them with the
| new associated data; the batch source and the fenced compare-and-swap
| commit are ReencryptStore's. Every DEK and plaintext is zeroed on every
| path. The run's entry points (approval, lock, resume, cancel) are
| ReencryptService's; a distributed run's chunks use this kind too
| (app/services/distributed_runs.ts).
|
*/
import { randomBytes } from 'node:crypto'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import { errorCode } from '#app/errors'
import { KEY_BYTES, NONCE_BYTES, type RandomBytes } from '#crypto/aead'
import { entryAad, openEnvelope, sealEnvelope } from '#crypto/envelope'
import { wrappedDekVersion } from '#crypto/wrapped_dek'
import type { RewrapConfig } from '#config/rewrap'
import type { KmsDriver } from '#kms/contract'
import { kmsError } from '#kms/error_codes'
import { KmsManager } from '#kms/kms_manager'
import type { HeldLock } from '#services/advisory_lock'
import { Clock } from '#services/clock'
import { DekCache } from '#services/dek_cache'
import { ForegroundDetector } from '#services/foreground_detector'
import { resolvePacing } from '#services/pacing_options'
import {
  ReencryptStore,
  type ReencryptedBatch,
  type ReencryptRun,
  type SourceRow,
} from '#services/reencrypt_store'
import { RunEngine, type EngineHooks, type EnginePacing, type RunKind } from '#services/run_engine'

/** Pacing, progress and stop signal of a re-encrypt run's batches. */
export interface ReencryptRowsOptions extends EngineHooks<ReencryptRun> {
  batchSize?: number
  sleepMs?: number
  /** Adaptive pacing: see config/rewrap.ts `rotation.niceRatio` (0 = full speed). */
  niceRatio?: number
  /** Pace by the foreground latency budget with this ratio (see config/rewrap.ts `rotation.pacing`). */
  latencyBudget?: number
}

/**
 * Re-encrypts the rows of a re-encrypt run, batch by batch.
 */
@inject()
export class RowReencrypter {
  /** Randomness for DEKs and nonces (swappable in tests). */
  random: RandomBytes = randomBytes

  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private cache: DekCache,
    private store: ReencryptStore
  ) {}

  #config(): RewrapConfig['lifecycle']['reencrypt'] {
    return app.config.get<RewrapConfig>('rewrap').lifecycle.reencrypt
  }

  #rotationConfig(): RewrapConfig['rotation'] {
    return app.config.get<RewrapConfig>('rewrap').rotation
  }

  /**
   * Moves every row of `run`'s source KEK to its target KEK from the run's
   * cursor, pass after pass (bounded). Ends the run `completed`,
   * `completed_with_errors` or `cancelled` (resumable), and returns it.
   * Throws E_LOCK_LOST (nothing of the batch written) once `lock`'s session
   * is gone, and the KMS's or the database's errors past their bounds.
   */
  async reencryptRows(
    run: ReencryptRun,
    options: ReencryptRowsOptions,
    lock: HeldLock
  ): Promise<ReencryptRun> {
    const kind = await this.kind(run)
    return this.#engine().drive(kind, run, this.pacing(run, options), options, lock)
  }

  /** What the log lines of a re-encrypt run name. */
  logContext(run: ReencryptRun): Record<string, unknown> {
    return { from: run.fromKek, to: run.toKek, run: run.id }
  }

  /** The re-encrypt run kind of `run` (its store; unwrap, open, fresh DEK, seal per batch). */
  async kind(run: ReencryptRun): Promise<RunKind<ReencryptRun, SourceRow, ReencryptedBatch>> {
    const fromDriver = await this.kms.forKek(run.fromKek)
    const toDriver = await this.kms.forKek(run.toKek)
    return this.#kind(fromDriver, toDriver, { from: run.fromKek, to: run.toKek })
  }

  /** Sizes, bounds and pacing of `run` (flags, then the run's options, then config/rewrap.ts). */
  pacing(run: ReencryptRun, options: ReencryptRowsOptions): EnginePacing {
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

  #engine(): RunEngine {
    return new RunEngine(
      this.clock,
      new ForegroundDetector(this.clock, this.#rotationConfig().foreground)
    )
  }

  #kind(
    fromDriver: KmsDriver,
    toDriver: KmsDriver,
    keks: { from: string; to: string }
  ): RunKind<ReencryptRun, SourceRow, ReencryptedBatch> {
    return {
      label: 're-encrypt',
      store: this.store,
      logContext: (run) => this.logContext(run),
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
