/*
|--------------------------------------------------------------------------
| Row verifier (`rotation:verify --full`)
|--------------------------------------------------------------------------
|
| Decrypt-checks EVERY row of a KEK before anything irreversible (deleting
| the KEK, trimming versions): keyset batches by id (bounded memory), one
| KMS unwrap call per batch (item by item when the KMS refuses the batch
| for one bad item), each payload opened with the row's associated data.
| Never the DEK cache: the check is that the KMS still opens every row.
| Plaintexts and DEKs are wiped as soon as they are checked; nothing of
| them is returned or logged.
|
*/
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import { entryAad, openEnvelope } from '#crypto/envelope'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { BACKGROUND_TAG } from '#services/foreground_detector'

/** One row that did not open. */
export interface RowFailure {
  id: string
  code: string
}

/** What a full verify found. */
export interface FullVerifyReport {
  kekName: string
  ok: boolean
  latestVersion: number
  /** Rows below the latest version (a finished rotation leaves none). */
  staleRows: number
  /** Rows decrypt-checked. */
  checked: number
  /** Rows that did not open. */
  failed: number
  /** The failing rows, ascending by id (the first {@link FAILURES_LISTED}). */
  failures: RowFailure[]
  /** True when more rows failed than are listed. */
  failuresTruncated: boolean
}

/** Options of {@link RowVerifier.verify}. */
export interface FullVerifyOptions {
  batchSize?: number
  /** After each batch: rows checked so far, of about `total`. */
  onProgress?: (checked: number, total: number) => void
}

/** Failing ids listed in a report (the count is always exact). */
export const FAILURES_LISTED = 10_000

/**
 * Decrypt-checks every row of a KEK.
 */
@inject()
export class RowVerifier {
  constructor(private kms: KmsManager) {}

  /**
   * Checks every row of `kekName` (rows written while it runs are checked
   * when their id is above the cursor). `ok` only when every row opened and
   * none is below the KEK's latest version.
   */
  async verify(kekName: string, options: FullVerifyOptions = {}): Promise<FullVerifyReport> {
    const batchSize = Math.max(1, options.batchSize ?? 500)
    const driver = await this.kms.forKek(kekName)
    const info = await this.kms.requireKek(kekName)
    const { rows: counts } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT count(*)::bigint AS total,
              count(*) FILTER (WHERE kek_version < ?)::bigint AS stale
         FROM vault_entries WHERE kek_name = ?`,
      [info.latestVersion, kekName]
    )
    const total = Number(counts[0].total)
    const report: FullVerifyReport = {
      kekName,
      ok: false,
      latestVersion: info.latestVersion,
      staleRows: Number(counts[0].stale),
      checked: 0,
      failed: 0,
      failures: [],
      failuresTruncated: false,
    }
    let cursor = '0'
    for (;;) {
      const { rows } = await db.rawQuery(
        `${BACKGROUND_TAG} SELECT id::text AS id, wrapped_dek, ciphertext FROM vault_entries
          WHERE kek_name = ? AND id > ? ORDER BY vault_entries.id LIMIT ?`,
        [kekName, cursor, batchSize]
      )
      if (rows.length === 0) break
      const codes = await this.#checkBatch(driver, kekName, rows)
      rows.forEach((row: { id: string }, i: number) => {
        const code = codes[i]
        if (!code) return
        report.failed++
        if (report.failures.length < FAILURES_LISTED) report.failures.push({ id: row.id, code })
        else report.failuresTruncated = true
      })
      report.checked += rows.length
      cursor = rows[rows.length - 1].id
      options.onProgress?.(report.checked, Math.max(total, report.checked))
    }
    report.ok = report.failed === 0 && report.staleRows === 0
    return report
  }

  /** Per row: null when it opens, else an error code. */
  async #checkBatch(
    driver: KmsDriver,
    kekName: string,
    rows: Array<{ id: string; wrapped_dek: string; ciphertext: Buffer }>
  ): Promise<Array<string | null>> {
    const deks = await this.#unwrap(driver, kekName, rows)
    return rows.map((row, i) => {
      const dek = deks[i]
      if (typeof dek === 'string') return dek
      try {
        openEnvelope(dek, row.ciphertext, entryAad(row.id, kekName)).fill(0)
        return null
      } catch {
        return 'E_CIPHERTEXT_INVALID'
      } finally {
        dek.fill(0)
      }
    })
  }

  /** DEKs in one call, else item by item (a string is the item's error code). */
  async #unwrap(
    driver: KmsDriver,
    kekName: string,
    rows: Array<{ wrapped_dek: string }>
  ): Promise<Array<Buffer | string>> {
    try {
      return await driver.unwrap(
        kekName,
        rows.map((r) => r.wrapped_dek)
      )
    } catch (error) {
      if (codeOf(error) === 'E_KMS_UNAVAILABLE') throw error
    }
    const out: Array<Buffer | string> = []
    for (const row of rows) {
      try {
        const [dek] = await driver.unwrap(kekName, [row.wrapped_dek])
        out.push(dek)
      } catch (error) {
        if (codeOf(error) === 'E_KMS_UNAVAILABLE') throw error
        out.push(codeOf(error))
      }
    }
    return out
  }
}

/** An `E_…` code (never a message: it could carry data). */
function codeOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code) ? code : 'E_KMS_REJECTED'
}
