/*
|--------------------------------------------------------------------------
| Key lifecycle service
|--------------------------------------------------------------------------
|
| Carries a KEK through its life after rotation: preflight (can a rotation
| run now?), verify (is every row at the latest version and readable?),
| retire (raise min_decryption_version once the soak period is over and no
| row needs an older version — reversible), unretire (lower it again) and
| trim (delete retired versions for good once the retention period since
| retiring is over). Ages come from the KMS's version creation times and
| the injected Clock.
|
*/
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import {
  E_KEK_NOT_FOUND,
  E_RETIRE_REFUSED,
  E_TRIM_REFUSED,
  E_UNRETIRE_REFUSED,
  errorCode,
} from '#app/errors'
import type { KekInfo } from '#kms/contract'
import { kmsError, type KmsErrorCode } from '#kms/error_codes'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { DekCache } from '#services/dek_cache'
import { notifyRevocation } from '#services/dek_cache_invalidation'
import { EntryService } from '#services/entry_service'
import { KekPolicies, type KekPolicy } from '#services/kek_policies'
import { KeyRotationService, type RotationPlan } from '#services/key_rotation_service'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { rowsPerVersionOf } from '#services/entry_counts'
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

/** What retire / unretire / trim did. */
export interface LifecycleChange {
  kekName: string
  action: 'retire' | 'unretire' | 'trim'
  /** False when the KMS already was in the asked state. */
  changed: boolean
  latestVersion: number
  minDecryptionVersion: number
  minEncryptionVersion: number
  minAvailableVersion: number
  /** Retire: when trim becomes allowed. Trim: the retirement it counted from. */
  retiredAt?: string | null
  trimAllowedAt?: string | null
}

/** "3d 4h", "5h 2m", "12m", "40s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`
}

/**
 * Preflight, verify, retire, unretire, trim.
 */
@inject()
export class KeyLifecycleService {
  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private rotations: KeyRotationService,
    private entries: EntryService,
    private cache: DekCache,
    private policies: KekPolicies,
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
      detail: `${report.plan.staleRows} rows to rewrap to v${report.plan.targetVersion}, about ${formatDuration(report.plan.estimatedSeconds * 1000)} (up to ${formatDuration(report.plan.estimatedSecondsPaced * 1000)} under foreground load)${report.plan.quotaBound ? `, quota-bound by the KMS's ${report.plan.quotaRowsPerSecond} requests/s` : ''}`,
    })
    report.ok = checks.every((c) => c.ok)
    return report
  }

  /**
   * Counts rows below the latest version (must be 0) and decrypts `sample`
   * random entries end to end (KMS unwrap, not the DEK cache).
   */
  async verify(kekName: string, options: { sample?: number } = {}): Promise<VerifyReport> {
    const info = await this.#readKey(kekName)
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
   * Raises min_decryption_version to the latest version: older versions can
   * no longer unwrap. Refused during the soak period (the latest version is
   * younger than `soakMs`), while any row is below the latest version, or
   * while a rotation run is unfinished.
   */
  async retire(kekName: string, options: { requestedBy?: string | null } = {}) {
    const info = await this.#readKey(kekName)
    const policy = this.policies.policy(kekName)
    const latest = info.latestVersion
    const createdAt = info.versions.find((v) => v.version === latest)?.createdAt
    const now = this.clock.now()
    if (!createdAt) throw new E_RETIRE_REFUSED([`the KMS reports no creation time for v${latest}`])
    const age = now.getTime() - createdAt.getTime()
    if (age < policy.soakMs) {
      const at = new Date(createdAt.getTime() + policy.soakMs)
      throw new E_RETIRE_REFUSED([
        `KEK "${kekName}" v${latest} is ${formatDuration(age)} old; the soak period is ${formatDuration(policy.soakMs)}: retire after ${at.toISOString()}`,
      ])
    }
    const unfinished = await this.store.findUnfinished(kekName)
    if (unfinished) {
      throw new E_RETIRE_REFUSED([
        `rotation run #${unfinished.id} of "${kekName}" is ${unfinished.status}: finish it first`,
      ])
    }
    const stale = await this.store.countStale(kekName, latest)
    if (stale > 0) {
      throw new E_RETIRE_REFUSED([
        `${stale} rows of "${kekName}" are below v${latest}: run rotate:kek ${kekName} --no-rotate first`,
      ])
    }
    if (info.minDecryptionVersion >= latest) {
      return this.#change('retire', info, false, await this.#openRetirement(kekName, policy))
    }
    const driver = await this.kms.forKek(kekName)
    const updated = await driver.configureKey(kekName, { minDecryptionVersion: latest })
    await db.transaction(async (trx) => {
      await trx
        .insertQuery()
        .table('kek_retirements')
        .insert({
          kek_name: kekName,
          previous_min_version: info.minDecryptionVersion,
          min_version: latest,
          retired_at: now,
          requested_by: options.requestedBy ?? null,
        })
      await notifyRevocation({ kek: kekName, action: 'retire' }, trx)
    })
    this.cache.invalidate()
    return this.#change('retire', updated, true, { retiredAt: now, policy })
  }

  /**
   * Lowers min_decryption_version again (rollback, restoring an old backup):
   * to `to`, by default the lowest version still available (not trimmed).
   */
  async unretire(kekName: string, options: { to?: number } = {}) {
    const info = await this.#readKey(kekName)
    const floor = Math.max(1, info.minAvailableVersion)
    const to = options.to ?? floor
    if (to < floor) {
      throw new E_UNRETIRE_REFUSED([
        `versions below v${floor} of "${kekName}" were trimmed and cannot come back`,
      ])
    }
    if (to > info.minDecryptionVersion) {
      throw new E_UNRETIRE_REFUSED([
        `v${to} is above the current min decryption version v${info.minDecryptionVersion}: use kek:retire to raise it`,
      ])
    }
    if (to === info.minDecryptionVersion) return this.#change('unretire', info, false)
    const driver = await this.kms.forKek(kekName)
    const updated = await driver.configureKey(kekName, { minDecryptionVersion: to })
    await db.rawQuery(
      `UPDATE kek_retirements SET unretired_at = ? WHERE kek_name = ? AND unretired_at IS NULL`,
      [this.clock.now(), kekName]
    )
    return this.#change('unretire', updated, true)
  }

  /**
   * Deletes the retired versions (below min_decryption_version) for good.
   * Refused when nothing is retired, when the retention period since the
   * retirement is not over, or when rows still need those versions. Pins
   * min_encryption_version to the latest first when it is 0 (Vault refuses
   * to trim otherwise).
   */
  async trim(kekName: string) {
    const info = await this.#readKey(kekName)
    const policy = this.policies.policy(kekName)
    const min = info.minDecryptionVersion
    if (min <= Math.max(1, info.minAvailableVersion)) {
      throw new E_TRIM_REFUSED([
        `nothing of "${kekName}" is retired beyond what was trimmed (min decryption v${min}): kek:retire first`,
      ])
    }
    const retirement = await this.#openRetirement(kekName, policy)
    const retiredAt = retirement.retiredAt
    if (!retiredAt) {
      throw new E_TRIM_REFUSED([`no retirement of "${kekName}" is recorded: kek:retire first`])
    }
    const allowedAt = new Date(retiredAt.getTime() + policy.retentionMs)
    if (this.clock.now().getTime() < allowedAt.getTime()) {
      throw new E_TRIM_REFUSED([
        `retired ${retiredAt.toISOString()}; the retention period is ${formatDuration(policy.retentionMs)}: trim after ${allowedAt.toISOString()}`,
      ])
    }
    const stale = await this.store.countStale(kekName, min)
    if (stale > 0) {
      throw new E_TRIM_REFUSED([
        `${stale} rows of "${kekName}" are below v${min} and would become unreadable forever`,
      ])
    }
    const driver = await this.kms.forKek(kekName)
    let current = info
    if (current.minEncryptionVersion === 0) {
      current = await driver.configureKey(kekName, { minEncryptionVersion: current.latestVersion })
    }
    const trimmed = await driver.trimKey(kekName, min)
    await notifyRevocation({ kek: kekName, action: 'trim' })
    this.cache.invalidate()
    return this.#change('trim', trimmed, true, { retiredAt, policy })
  }

  /**
   * The retirement trim counts from: the open row of kek_retirements at the
   * current min version; for a KEK retired outside the app, the creation of
   * the version that became the minimum plus the soak period (the earliest
   * moment kek:retire would have allowed it).
   */
  async #openRetirement(
    kekName: string,
    policy: KekPolicy
  ): Promise<{ retiredAt: Date | null; policy: KekPolicy }> {
    const info = await this.#readKey(kekName)
    const { rows } = await db.rawQuery(
      `SELECT retired_at FROM kek_retirements
        WHERE kek_name = ? AND unretired_at IS NULL AND min_version = ?
        ORDER BY id DESC LIMIT 1`,
      [kekName, info.minDecryptionVersion]
    )
    if (rows[0]) return { retiredAt: new Date(rows[0].retired_at), policy }
    const created = info.versions.find((v) => v.version === info.minDecryptionVersion)?.createdAt
    return { retiredAt: created ? new Date(created.getTime() + policy.soakMs) : null, policy }
  }

  #change(
    action: LifecycleChange['action'],
    info: KekInfo,
    changed: boolean,
    retirement?: { retiredAt: Date | null; policy: KekPolicy }
  ): LifecycleChange {
    const result: LifecycleChange = {
      kekName: info.name,
      action,
      changed,
      latestVersion: info.latestVersion,
      minDecryptionVersion: info.minDecryptionVersion,
      minEncryptionVersion: info.minEncryptionVersion,
      minAvailableVersion: info.minAvailableVersion,
    }
    if (retirement) {
      const at = retirement.retiredAt
      result.retiredAt = at ? at.toISOString() : null
      result.trimAllowedAt = at
        ? new Date(at.getTime() + retirement.policy.retentionMs).toISOString()
        : null
    }
    return result
  }

  async #readKey(kekName: string): Promise<KekInfo> {
    const driver = await this.kms.forKek(kekName)
    const info = await driver.readKey(kekName)
    if (!info) throw new E_KEK_NOT_FOUND([kekName])
    return info
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
        `SELECT id::text AS id FROM vault_entries WHERE kek_name = ? AND id >= ? ORDER BY id LIMIT 1`,
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
