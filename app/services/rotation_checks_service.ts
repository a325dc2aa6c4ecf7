/*
|--------------------------------------------------------------------------
| Rotation checks service
|--------------------------------------------------------------------------
|
| The checks around a rotation that change nothing: preflight (can a
| rotation run now? `rotation:preflight`) and the sampled verify (is every
| row at the latest version, and do random entries decrypt end to end?
| `rotation:verify`; `--full` is the RowVerifier). What happens to a KEK
| after that (retire, unretire, trim) is the KeyLifecycleService.
|
*/
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { errorCode } from '#app/errors'
import { formatDuration } from '#app/utils/duration'
import type { KekInfo } from '#kms/contract'
import { kmsError, type KmsErrorCode } from '#kms/error_codes'
import { KmsManager } from '#kms/kms_manager'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { DekCache } from '#services/dek_cache'
import { rowsPerVersionOf } from '#services/entry_counts'
import { EntryService } from '#services/entry_service'
import { KeyRotationService, type RotationPlan } from '#services/key_rotation_service'
import { RotationStore } from '#services/rotation_store'

/** One preflight check. */
export interface PreflightCheck {
  name: 'kms' | 'key' | 'permissions' | 'runs' | 'migrations' | 'plan'
  ok: boolean
  detail: string
}

/** What `rotation:preflight` reports. */
export interface PreflightReport {
  kekName: string
  ok: boolean
  checks: PreflightCheck[]
  plan: RotationPlan | null
  pendingMigrations: string[]
}

/** One sampled entry that failed to decrypt. */
export interface VerifyFailure {
  id: string
  code: string
}

/** What `rotation:verify` reports. */
export interface VerifyReport {
  kekName: string
  ok: boolean
  latestVersion: number
  /** Rows whose DEK is wrapped under a version below the latest. */
  staleRows: number
  rowsPerVersion: Array<{ version: number; rows: number }>
  sampled: number
  decrypted: number
  failures: VerifyFailure[]
}

/**
 * Preflight and verify.
 */
@inject()
export class RotationChecksService {
  constructor(
    private kms: KmsManager,
    private rotations: KeyRotationService,
    private entries: EntryService,
    private cache: DekCache,
    private store: RotationStore,
    private locks: AdvisoryLock
  ) {}

  /**
   * The runbook's checklist before a rotation. Never changes anything but a
   * throw-away wrap of a random test DEK.
   */
  async preflight(kekName: string): Promise<PreflightReport> {
    const checks: PreflightCheck[] = []
    const report: PreflightReport = {
      kekName,
      ok: false,
      checks,
      plan: null,
      pendingMigrations: [],
    }
    const driver = await this.kms.forKek(kekName)

    let info: KekInfo | null
    try {
      info = await driver.readKey(kekName)
      checks.push({ name: 'kms', ok: true, detail: 'KMS reachable' })
    } catch (error) {
      checks.push({ name: 'kms', ok: false, detail: `KMS not usable: ${errorCode(error)}` })
      return report
    }
    if (!info) {
      checks.push({ name: 'key', ok: false, detail: `KEK "${kekName}" does not exist` })
      return report
    }
    checks.push({
      name: 'key',
      ok: true,
      detail: `KEK "${kekName}" exists, latest v${info.latestVersion}, min decryption v${info.minDecryptionVersion}`,
    })

    const dek = randomBytes(32)
    try {
      const [wrapped] = await driver.wrap(kekName, [dek])
      const [rewrapped] = await driver.rewrap(kekName, [wrapped])
      if (!rewrapped.ok) throw kmsError(rewrapped.code as KmsErrorCode, rewrapped.message, kekName)
      const [back] = await driver.unwrap(kekName, [rewrapped.wrapped])
      const same = back.length === dek.length && timingSafeEqual(back, dek)
      back.fill(0)
      checks.push({
        name: 'permissions',
        ok: same,
        detail: same
          ? 'wrap, rewrap and unwrap of a random test DEK round-trip'
          : 'unwrap answered a different DEK',
      })
    } catch (error) {
      checks.push({
        name: 'permissions',
        ok: false,
        detail: `wrap/rewrap/unwrap failed: ${errorCode(error)}`,
      })
    } finally {
      dek.fill(0)
    }

    const unfinished = await this.store.findUnfinished(kekName)
    const lock = await this.locks.tryAcquire(lockKeys.rotation(kekName))
    await lock?.release()
    checks.push({
      name: 'runs',
      ok: !unfinished && !!lock,
      detail: !lock
        ? 'a rotation of this KEK is running now'
        : unfinished
          ? `unfinished run #${unfinished.id} (${unfinished.status}): rotate:kek ${kekName} --resume`
          : 'no run in progress or unfinished',
    })

    report.pendingMigrations = await this.#pendingMigrations()
    checks.push({
      name: 'migrations',
      ok: report.pendingMigrations.length === 0,
      detail:
        report.pendingMigrations.length === 0
          ? 'no pending migrations'
          : `pending migrations: ${report.pendingMigrations.join(', ')} (node ace migration:run)`,
    })

    report.plan = await this.rotations.plan(kekName)
    checks.push({
      name: 'plan',
      ok: true,
      detail: `${report.plan.staleRows} rows to rewrap to v${report.plan.targetVersion}, about ${formatDuration(report.plan.estimatedSeconds * 1000)} (up to ${formatDuration(report.plan.estimatedSecondsPaced * 1000)} under foreground load)${report.plan.quotaBound ? `, quota-bound by the KMS's ${report.plan.quotaRowsPerSecond} rows/s` : ''}`,
    })
    report.ok = checks.every((c) => c.ok)
    return report
  }

  /**
   * Counts rows below the latest version (must be 0) and decrypts `sample`
   * random entries end to end (KMS unwrap, not the DEK cache).
   */
  async verify(kekName: string, options: { sample?: number } = {}): Promise<VerifyReport> {
    const info = await this.kms.requireKek(kekName)
    const rowsPerVersion = await rowsPerVersionOf(kekName)
    const staleRows = rowsPerVersion
      .filter((r) => r.version < info.latestVersion)
      .reduce((sum, r) => sum + r.rows, 0)

    const total = rowsPerVersion.reduce((sum, r) => sum + r.rows, 0)
    const ids = await this.#sampleIds(kekName, options.sample ?? 20, total)
    const failures: VerifyFailure[] = []
    for (const id of ids) {
      this.cache.forgetRow(id)
      try {
        await this.entries.find(id)
      } catch (error) {
        const code = errorCode(error)
        if (code !== 'E_ENTRY_NOT_FOUND') failures.push({ id, code })
      }
    }
    return {
      kekName,
      ok: staleRows === 0 && failures.length === 0,
      latestVersion: info.latestVersion,
      staleRows,
      rowsPerVersion,
      sampled: ids.length,
      decrypted: ids.length - failures.length,
      failures,
    }
  }

  /**
   * Up to `n` distinct random ids of a KEK: random points in its id range,
   * each resolved to the next id (index lookups, no full scan).
   */
  async #sampleIds(kekName: string, n: number, total: number): Promise<string[]> {
    if (n <= 0 || total === 0) return []
    if (total <= n) {
      const all = await db.from('vault_entries').where('kek_name', kekName).select('id')
      return all.map((row) => String(row.id))
    }
    const { rows } = await db.rawQuery(
      `SELECT min(id)::text AS lo, max(id)::text AS hi FROM vault_entries WHERE kek_name = ?`,
      [kekName]
    )
    if (rows[0].lo === null) return []
    const lo = BigInt(rows[0].lo)
    const span = BigInt(rows[0].hi) - lo + 1n
    const ids = new Set<string>()
    for (let i = 0; i < n * 2 && ids.size < n; i++) {
      const offset = BigInt('0x' + randomBytes(8).toString('hex')) % span
      const { rows: found } = await db.rawQuery(
        `SELECT id::text AS id FROM vault_entries WHERE kek_name = ? AND id >= ? ORDER BY vault_entries.id LIMIT 1`,
        [kekName, (lo + offset).toString()]
      )
      if (found[0]) ids.add(found[0].id)
    }
    return [...ids]
  }

  async #pendingMigrations(): Promise<string[]> {
    const { MigrationRunner } = await import('@adonisjs/lucid/migration')
    const lucid = await app.container.make('lucid.db')
    const migrator = new MigrationRunner(lucid, app, { direction: 'up', dryRun: true })
    // No migrator.close(): it would close every connection of the app.
    const list = await migrator.getList()
    return list.filter((m) => m.status === 'pending').map((m) => m.name)
  }
}
