/*
|--------------------------------------------------------------------------
| Key lifecycle service
|--------------------------------------------------------------------------
|
| Carries a KEK through its life after rotation: retire (raise
| min_decryption_version once the soak period is over and no row needs an
| older version — reversible), unretire (lower it again) and trim (delete
| retired versions for good once the retention period since retiring is
| over). Ages come from the KMS's version creation times and the injected
| Clock. The checks before and after a rotation (preflight, verify) are the
| RotationChecksService.
|
*/
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import {
  E_RETIRE_REFUSED,
  E_TRIM_REFUSED,
  E_TRIM_UNSUPPORTED,
  E_UNRETIRE_REFUSED,
} from '#app/errors'
import { formatDuration } from '#app/utils/duration'
import type { KekInfo } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { DekCache } from '#services/dek_cache'
import { notifyRevocation } from '#services/dek_cache_invalidation'
import { KekPolicies, type KekPolicy } from '#services/kek_policies'
import { RotationStore } from '#services/rotation_store'
import { AuditService } from '#services/audit_service'
import { unretireParams } from '#app/governance/acts'
import { ApprovalGate, type GovernedActRequest } from '#services/approval_gate'

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

/** A governed retire / unretire / trim. */
type LifecycleAct = GovernedActRequest & { action: LifecycleChange['action'] }

/**
 * Retire, unretire, trim.
 */
@inject()
export class KeyLifecycleService {
  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private cache: DekCache,
    private policies: KekPolicies,
    private store: RotationStore,
    private audit: AuditService,
    private gate: ApprovalGate
  ) {}

  /**
   * Raises min_decryption_version to the latest version: older versions can
   * no longer unwrap. Refused during the soak period (the latest version is
   * younger than `soakMs`), while any row is below the latest version, or
   * while a rotation run is unfinished.
   */
  async retire(kekName: string, options: { requestedBy?: string | null; approval?: string } = {}) {
    const act = this.#act('retire', kekName, {
      approval: options.approval,
      actor: options.requestedBy,
    })
    await this.gate.check(act)
    const info = await this.kms.requireKek(kekName)
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
    let updated = info
    await db.transaction(async (trx) => {
      // Audit: the approval consumed and the record first, then the KMS change, in one
      // transaction (see docs/auditing.md).
      await this.#consumeAndRecord(trx, act, { min_version: latest })
      updated = await driver.configureKey(kekName, { minDecryptionVersion: latest })
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
  async unretire(
    kekName: string,
    options: { to?: number; actor?: string; approval?: string } = {}
  ) {
    const act = this.#act('unretire', kekName, options, unretireParams(options))
    await this.gate.check(act)
    const info = await this.kms.requireKek(kekName)
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
    const updated = await db.transaction(async (trx) => {
      // Audit: the approval consumed and the record first, then the KMS change, in one transaction.
      await this.#consumeAndRecord(trx, act, { min_version: to })
      const changed = await driver.configureKey(kekName, { minDecryptionVersion: to })
      await trx.rawQuery(
        `UPDATE kek_retirements SET unretired_at = ? WHERE kek_name = ? AND unretired_at IS NULL`,
        [this.clock.now(), kekName]
      )
      return changed
    })
    return this.#change('unretire', updated, true)
  }

  /**
   * Deletes the retired versions (below min_decryption_version) for good.
   * Refused when nothing is retired, when the retention period since the
   * retirement is not over, or when rows still need those versions. Pins
   * min_encryption_version to the latest first when it is 0 (Vault refuses
   * to trim otherwise).
   */
  async trim(kekName: string, options: { actor?: string; approval?: string } = {}) {
    const act = this.#act('trim', kekName, options)
    await this.gate.check(act)
    const info = await this.kms.requireKek(kekName)
    const kmsDriver = await this.kms.forKek(kekName)
    if (kmsDriver.canTrimVersions === false) {
      throw new E_TRIM_UNSUPPORTED([kekName, this.kms.driverNameFor(kekName)])
    }
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
    const trimmed = await db.transaction(async (trx) => {
      // Audit: the approval consumed and the record first, then the KMS change, in one transaction.
      await this.#consumeAndRecord(trx, act, { below_version: min })
      const result = await driver.trimKey(kekName, min)
      await notifyRevocation({ kek: kekName, action: 'trim' }, trx)
      return result
    })
    this.cache.invalidate()
    return this.#change('trim', trimmed, true, { retiredAt, policy })
  }

  /**
   * The governed act of `action` on `kekName` (the gate checks it, then
   * consumes its approval); the actor is `cli` unless named.
   */
  #act(
    action: LifecycleChange['action'],
    kekName: string,
    by: { approval?: string; actor?: string | null },
    params: Record<string, string> = {}
  ): LifecycleAct {
    return { action, kek: kekName, params, approval: by.approval, actor: by.actor ?? 'cli' }
  }

  /**
   * Inside the act's transaction, before the KMS change: consumes its
   * approval and appends its audit record `kek.<action>` with `data`.
   */
  async #consumeAndRecord(
    trx: TransactionClientContract,
    act: LifecycleAct,
    data: Record<string, unknown>
  ): Promise<void> {
    const approvals = await this.gate.consume(trx, act, `kek.${act.action} of "${act.kek}"`)
    await this.audit.append(trx, {
      act: `kek.${act.action}`,
      actor: act.actor,
      outcome: 'done',
      kek: act.kek,
      data,
      approvals,
    })
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
    const info = await this.kms.requireKek(kekName)
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
}
