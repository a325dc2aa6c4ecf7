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
| Same shape as the rewrap loop: id keyset batches (one unwrap call, one
| wrap call, one UPDATE), compare-and-swap on wrapped_dek so a concurrent
| write wins (the row is picked up by the next pass), the run's cursor
| committed in the same statement (resumable after a crash or Ctrl-C),
| throttled, one run per source KEK at a time (advisory lock).
|
| Over 300 lines: kept whole until rotation and re-encrypt share one run
| engine (issue: scale-out).
|
*/
import { randomBytes } from 'node:crypto'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import db from '@adonisjs/lucid/services/db'
import {
  E_KEK_NOT_FOUND,
  E_LOCK_LOST,
  E_REENCRYPT_REFUSED,
  errorCode,
  safeMessage,
} from '#app/errors'
import { KEY_BYTES, NONCE_BYTES, type RandomBytes } from '#crypto/aead'
import { entryAad, openEnvelope, sealEnvelope } from '#crypto/envelope'
import { wrappedDekVersion } from '#crypto/wrapped_dek'
import type { RewrapConfig } from '#config/rewrap'
import type { KmsDriver } from '#kms/contract'
import { kmsError } from '#kms/error_codes'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { runProgress, type RunProgress } from '#services/run_progress'
import { DekCache } from '#services/dek_cache'
import { AdvisoryLock, HELD_BY_SQL, lockKeys, type HeldLock } from '#services/advisory_lock'
import { asRunError, isRecoverableRunFailure, retakeLock } from '#services/database_outage'
import { pgArray, updateRunRow } from '#services/rotation_store'
import { runAuditEntry, withAuditRecord } from '#services/audit_service'
import { Throttle } from '#services/throttle'
import { reencryptParams } from '#app/governance/acts'
import { ApprovalGate, type GovernedActRequest } from '#services/approval_gate'
import { BACKGROUND_TAG, ForegroundDetector } from '#services/foreground_detector'

/** A re-encrypt run row. */
export interface ReencryptRun {
  id: string
  fromKek: string
  toKek: string
  status: 'running' | 'completed' | 'completed_with_errors' | 'failed' | 'cancelled'
  totalRows: number
  reencrypted: number
  skipped: number
  failed: number
  cursorId: string
  pass: number
  options: Record<string, unknown>
  lastError: string | null
  startedAt: Date
  finishedAt: Date | null
}

/** Progress after every batch. */
export type ReencryptProgress = RunProgress<ReencryptRun>

/** Options of a re-encrypt run. */
export interface ReencryptOptions {
  batchSize?: number
  sleepMs?: number
  /** Adaptive pacing: see config/rewrap.ts `rotation.niceRatio` (0 = full speed). */
  niceRatio?: number
  /** Aborting finishes the current batch and leaves the run resumable. */
  signal?: AbortSignal
  onProgress?: (progress: ReencryptProgress) => void | Promise<void>
  /** SAID of the approved request a new run starts under (dual control; not needed to resume). */
  approval?: string
  /** Who asks (OS user, token name); `cli` by default. */
  actor?: string
}

interface SourceRow {
  id: string
  wrappedDek: string
  ciphertext: Buffer
}

/** A row a run could not move. */
export interface ReencryptFailure {
  entryId: string
  errorCode: string
  /** Batches that met it in this run (a later pass retries it). */
  attempts: number
}

function toRun(row: Record<string, any>): ReencryptRun {
  return {
    id: String(row.id),
    fromKek: row.from_kek,
    toKek: row.to_kek,
    status: row.status,
    totalRows: Number(row.total_rows),
    reencrypted: Number(row.reencrypted),
    skipped: Number(row.skipped),
    failed: Number(row.failed),
    cursorId: String(row.cursor_id),
    pass: row.pass,
    options: row.options ?? {},
    lastError: row.last_error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  }
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
    private gate: ApprovalGate
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
   * (signal; resumable) or throws (the run is left `failed`, resumable).
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

    let lock: HeldLock | null = await this.locks
      .tryAcquire(lockKeys.reencrypt(from))
      .catch((error) => {
        throw asRunError(error)
      })
    if (!lock) throw new E_REENCRYPT_REFUSED([`a re-encrypt of "${from}" is already running`])
    let run: ReencryptRun | undefined
    try {
      run = await this.#openRun(from, to, options, act)
      for (;;) {
        try {
          return await this.#loop(run, fromDriver, toDriver, options, lock)
        } catch (error) {
          if (!isRecoverableRunFailure(error)) throw error
          // As a rotation does: wait for the database, take the lock back, go on from the cursor.
          const context = { from, to, run: run.id, err: safeMessage(asRunError(error)) }
          logger.warn(context, 're-encrypt interrupted: database or lock lost; recovering')
          const lost = lock
          await lost.release()
          lock = null
          lock = await retakeLock(
            this.locks,
            lost,
            this.clock,
            this.#rotationConfig().databaseOutageMs,
            this.clock.now().getTime(),
            context
          )
          const current = await this.#find(run.id)
          if (current.status !== 'running') return current
          run = current
        }
      }
    } catch (error) {
      // Record the stop only while holding the lock: without it, another process may own the run.
      if (run && lock && !lock.lost) {
        await this.#update(run.id, {
          status: 'failed',
          last_error: safeMessage(asRunError(error)),
        }).catch(() => {})
      }
      throw asRunError(error)
    } finally {
      await lock?.release()
    }
  }

  async #find(id: string): Promise<ReencryptRun> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM reencrypt_runs WHERE id = ?`,
      [id]
    )
    return toRun(rows[0])
  }

  /**
   * The newest unfinished run of a source KEK, or null.
   */
  async findUnfinished(from: string): Promise<ReencryptRun | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM reencrypt_runs WHERE from_kek = ? AND status IN ('running', 'failed', 'cancelled')
        ORDER BY id DESC LIMIT 1`,
      [from]
    )
    return rows[0] ? toRun(rows[0]) : null
  }

  async #openRun(
    from: string,
    to: string,
    options: ReencryptOptions,
    act: GovernedActRequest
  ): Promise<ReencryptRun> {
    const config = this.#config()
    const unfinished = await this.findUnfinished(from)
    if (unfinished && unfinished.toKek !== to) {
      throw new E_REENCRYPT_REFUSED([
        `run #${unfinished.id} moves "${from}" to "${unfinished.toKek}": finish it with --to ${unfinished.toKek}`,
      ])
    }
    const remaining = await this.#count(from)
    if (unfinished) {
      const done = unfinished.reencrypted + unfinished.skipped + unfinished.failed
      logger.info({ from, to, run: unfinished.id }, 're-encrypt resumed')
      return this.#update(unfinished.id, {
        status: 'running',
        last_error: null,
        total_rows: done + remaining,
      })
    }
    // Audit: the run row, its approval being consumed and its `reencrypt.started` record
    // commit together.
    const { rows } = await withAuditRecord(
      async (trx) => {
        const result = await trx.rawQuery(
          `${BACKGROUND_TAG} INSERT INTO reencrypt_runs (from_kek, to_kek, status, total_rows, options)
       VALUES (?, ?, 'running', ?, ?::jsonb) RETURNING *`,
          [
            from,
            to,
            remaining,
            JSON.stringify({
              batchSize: options.batchSize ?? config.batchSize,
              sleepMs: options.sleepMs ?? config.sleepMs,
              niceRatio: options.niceRatio ?? config.niceRatio,
            }),
          ]
        )
        const usedBy = `reencrypt run #${result.rows[0].id}`
        return { rows: result.rows, approvals: await this.gate.consume(trx, act, usedBy) }
      },
      (result) => {
        const run = toRun(result.rows[0])
        const entry = runAuditEntry('reencrypt', run, { status: 'running', created: true })
        return entry && { ...entry, approvals: result.approvals }
      }
    )
    logger.info({ from, to, run: String(rows[0].id), total: remaining }, 're-encrypt started')
    return toRun(rows[0])
  }

  async #loop(
    run: ReencryptRun,
    fromDriver: KmsDriver,
    toDriver: KmsDriver,
    options: ReencryptOptions,
    lock: HeldLock
  ): Promise<ReencryptRun> {
    const config = this.#config()
    const batchSize = Number(options.batchSize ?? run.options.batchSize ?? config.batchSize)
    const throttle = new Throttle(
      this.clock,
      {
        sleepMs: Number(options.sleepMs ?? run.options.sleepMs ?? config.sleepMs),
        maxRate: 0,
        niceRatio: Number(options.niceRatio ?? run.options.niceRatio ?? config.niceRatio),
      },
      new ForegroundDetector(this.clock, this.#rotationConfig().foreground)
    )
    const startedAt = this.clock.now().getTime()
    const priorDone = run.reencrypted + run.skipped + run.failed
    let doneHere = 0
    for (;;) {
      let failedThisPass = 0
      for (;;) {
        const rows = await this.#readBatch(run.fromKek, run.cursorId, batchSize)
        if (rows.length === 0) break
        // The lock's session ended: stop before writing (reencrypt() takes it back or stops).
        if (lock.lost) throw new E_LOCK_LOST([])
        const outcome = await this.#batch(run, rows, fromDriver, toDriver, lock)
        failedThisPass += outcome.failed
        doneHere += rows.length
        run = outcome.run
        await options.onProgress?.(
          runProgress(run, priorDone + doneHere, doneHere, startedAt, this.clock.now().getTime())
        )
        if (lock.lost) throw new E_LOCK_LOST([])
        if (options.signal?.aborted) {
          logger.info({ run: run.id }, 're-encrypt stopped; resumable')
          return this.#update(run.id, { status: 'cancelled' })
        }
        await throttle.afterBatch(rows.length)
      }
      const remaining = await this.#count(run.fromKek)
      if (remaining === 0) {
        logger.info({ run: run.id, reencrypted: run.reencrypted }, 're-encrypt completed')
        return this.#update(run.id, { status: 'completed', finished_at: this.clock.now() })
      }
      if (remaining <= failedThisPass || run.pass >= config.maxPasses) {
        return this.#update(run.id, {
          status: 'completed_with_errors',
          finished_at: this.clock.now(),
          last_error: `${remaining} rows still under "${run.fromKek}"; see reencrypt_failures`,
        })
      }
      // Rows rewritten under the old KEK while the scan ran: another pass.
      run = await this.#update(run.id, {
        pass: run.pass + 1,
        cursor_id: 0,
        total_rows: run.totalRows + remaining,
      })
    }
  }

  /**
   * One batch: unwrap the old DEKs, open the payloads, fresh DEKs wrapped
   * by the target KEK, seal, one CAS UPDATE that also moves the cursor.
   */
  async #batch(
    run: ReencryptRun,
    rows: SourceRow[],
    fromDriver: KmsDriver,
    toDriver: KmsDriver,
    lock: HeldLock
  ) {
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
      const ids: string[] = []
      const oldWrapped: string[] = []
      const newWrapped: string[] = []
      const versions: number[] = []
      const ciphertexts: Buffer[] = []
      okIndexes.forEach((i, k) => {
        const version = wrappedDekVersion(wrapped[k])
        if (!version)
          throw kmsError('E_KMS_REJECTED', 'wrap answered an unexpected result', run.toKek)
        ids.push(rows[i].id)
        oldWrapped.push(rows[i].wrappedDek)
        newWrapped.push(wrapped[k])
        versions.push(version)
        ciphertexts.push(
          sealEnvelope(
            newDeks[k],
            nonces.subarray(i * NONCE_BYTES, (i + 1) * NONCE_BYTES),
            plaintexts[i]!,
            entryAad(rows[i].id, run.toKek)
          )
        )
      })
      const failedIndexes = rows.map((_, i) => i).filter((i) => plaintexts[i] === null)
      const failed = failedIndexes.length
      const { rows: result } = await db.rawQuery(
        `${BACKGROUND_TAG} WITH held AS (
           SELECT 1 WHERE ${HELD_BY_SQL}
         ), f AS (
           INSERT INTO reencrypt_failures (run_id, entry_id, error_code)
           SELECT ?, f.id, f.code FROM unnest(?::bigint[], ?::text[]) AS f(id, code)
            WHERE EXISTS (SELECT 1 FROM held)
           ON CONFLICT (run_id, entry_id) DO UPDATE
              SET attempts = reencrypt_failures.attempts + 1,
                  error_code = EXCLUDED.error_code, last_seen_at = now()
         ), upd AS (
           UPDATE vault_entries v
              SET kek_name = ?, kek_version = u.v, wrapped_dek = u.new, ciphertext = u.c,
                  rotated_at = now()
             FROM unnest(?::bigint[], ?::text[], ?::text[], ?::int[], ?::bytea[])
                  AS u(id, old, new, v, c)
            WHERE v.id = u.id AND v.kek_name = ? AND v.wrapped_dek = u.old
              AND EXISTS (SELECT 1 FROM held)
           RETURNING 1
         ), n AS (SELECT count(*)::int AS updated FROM upd)
         UPDATE reencrypt_runs r
            SET cursor_id = ?, reencrypted = r.reencrypted + n.updated,
                skipped = r.skipped + (? - n.updated), failed = r.failed + ?,
                updated_at = now()
           FROM n
          WHERE r.id = ? AND EXISTS (SELECT 1 FROM held)
         RETURNING r.*`,
        [
          lock.fence.pid,
          lock.fence.key,
          run.id,
          pgArray(failedIndexes.map((i) => rows[i].id)),
          pgArray(failedIndexes.map((i) => codes[i] ?? 'E_KMS_REJECTED')),
          run.toKek,
          pgArray(ids),
          pgArray(oldWrapped),
          pgArray(newWrapped),
          pgArray(versions),
          pgArray(ciphertexts),
          run.fromKek,
          rows[rows.length - 1].id,
          ids.length,
          failed,
          run.id,
        ]
      )
      // Fenced out: the lock's session is gone; nothing was written.
      if (result.length === 0) throw new E_LOCK_LOST([])
      for (const id of ids) this.cache.forgetRow(id)
      if (failed > 0) {
        logger.warn({ run: run.id, failed }, 're-encrypt: rows could not be read; left in place')
      }
      return { run: toRun(result[0]), failed }
    } finally {
      pool.fill(0)
      for (const dek of oldDeks) dek?.fill(0)
      for (const plaintext of plaintexts) plaintext?.fill(0)
    }
  }

  /**
   * Rows a run could not move, by entry id (at most `limit`).
   */
  async failures(runId: string, limit = 1000): Promise<ReencryptFailure[]> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT entry_id, error_code, attempts FROM reencrypt_failures
        WHERE run_id = ? ORDER BY entry_id LIMIT ?`,
      [runId, limit]
    )
    return rows.map((r: any) => ({
      entryId: String(r.entry_id),
      errorCode: r.error_code,
      attempts: r.attempts,
    }))
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
    return { deks, codes }
  }

  async #readBatch(kek: string, afterId: string, limit: number): Promise<SourceRow[]> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT id, wrapped_dek, ciphertext FROM vault_entries
        WHERE kek_name = ? AND id > ? ORDER BY id LIMIT ?`,
      [kek, afterId, limit]
    )
    return rows.map((r: any) => ({
      id: String(r.id),
      wrappedDek: r.wrapped_dek,
      ciphertext: r.ciphertext,
    }))
  }

  async #count(kek: string): Promise<number> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT count(*)::bigint AS n FROM vault_entries WHERE kek_name = ?`,
      [kek]
    )
    return Number(rows[0].n)
  }

  async #update(id: string, fields: Record<string, unknown>): Promise<ReencryptRun> {
    if (!('status' in fields)) return toRun(await updateRunRow('reencrypt_runs', id, fields))
    // Audit: a status change and its record (resumed, finished, failed, cancelled) commit together.
    return withAuditRecord(
      async (trx) => toRun(await updateRunRow('reencrypt_runs', id, fields, trx)),
      (run) => runAuditEntry('reencrypt', run, fields)
    )
  }
}

function isOutage(error: unknown): boolean {
  return errorCode(error) === 'E_KMS_UNAVAILABLE'
}
