/*
|--------------------------------------------------------------------------
| KEK inventory
|--------------------------------------------------------------------------
|
| Which KEKs exist and what each version holds, one way for `kek:list`
| and the status report: names from every driver's `listKeys()` (each
| name counted once, under the driver that holds it) plus the names rows
| and runs give; per version its state in the KMS, age and rows.
|
*/
import { inject } from '@adonisjs/core'
import type { KekInfo } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { withTimeout } from '#app/utils/async'

/**
 * A version's state in the KMS: `active` (decryptable), `retired`
 * (< min_decryption_version), `trimmed` (deleted), `unknown` (the KMS does
 * not know the KEK or this version, or could not be asked).
 */
export type KekVersionState = 'active' | 'retired' | 'trimmed' | 'unknown'

/** One version of a KEK (kek:list, GET /rotations/status). */
export interface KekVersionSummary {
  version: number
  state: KekVersionState
  /** True when `state` is `active`: rows under this version can be read. */
  decryptable: boolean
  /** From the KMS; null when the KMS does not report it (retired, trimmed). */
  createdAt: string | null
  /** Seconds since creation (null when unknown). */
  ageSeconds: number | null
  /** Rows of vault_entries whose DEK is wrapped under this version. */
  rows: number
}

/** One KEK: the KMS's view joined with its rows. */
export interface KekSummary {
  name: string
  /** False when rows name a KEK the KMS does not know. */
  exists: boolean
  latestVersion: number | null
  minDecryptionVersion: number | null
  minEncryptionVersion: number | null
  minAvailableVersion: number | null
  /** Every version up to the latest, and any version rows name, ascending. */
  versions: KekVersionSummary[]
  rows: number
}

/**
 * Lists KEK names across drivers and summarises a KEK's versions.
 */
@inject()
export class KekInventory {
  constructor(private kms: KmsManager) {}

  /**
   * `named` (KEKs that rows, runs or config name) and every KEK a driver
   * lists under its own name, sorted. A driver that may not list
   * (E_KMS_DENIED) is left out; with `bestEffort`, so is one that fails or
   * takes longer than `timeoutMs`, instead of failing the call.
   */
  async names(
    named: Iterable<string>,
    options: { bestEffort?: boolean; timeoutMs?: number } = {}
  ): Promise<string[]> {
    const names = new Set(named)
    for (const driverName of this.kms.driverNames()) {
      let listed: string[]
      try {
        const listing = this.kms.use(driverName).then((driver) => driver.listKeys())
        listed = options.timeoutMs ? await withTimeout(listing, options.timeoutMs) : await listing
      } catch (error) {
        // A token may read named keys without the right to list them (a narrow
        // Vault policy): that driver's KEKs are then the ones `named` gives.
        if (options.bestEffort || (error as { code?: unknown })?.code === 'E_KMS_DENIED') continue
        throw error
      }
      for (const name of listed) {
        if (this.kms.driverNameFor(name) === driverName) names.add(name)
      }
    }
    return [...names].sort()
  }

  /**
   * A KEK's summary from the KMS's view (null: unknown or not asked) and
   * its rows per version, ages at `now`.
   */
  summary(name: string, info: KekInfo | null, rows: Map<number, number>, now: Date): KekSummary {
    const created = new Map((info?.versions ?? []).map((v) => [v.version, v.createdAt]))
    const numbers = new Set<number>(rows.keys())
    for (let v = 1; v <= (info?.latestVersion ?? 0); v++) numbers.add(v)
    const versions = [...numbers]
      .sort((a, b) => a - b)
      .map((version): KekVersionSummary => {
        const at = created.get(version)
        const state = versionState(info, version)
        return {
          version,
          state,
          decryptable: state === 'active',
          createdAt: at ? at.toISOString() : null,
          ageSeconds: at ? Math.max(0, Math.floor((now.getTime() - at.getTime()) / 1000)) : null,
          rows: rows.get(version) ?? 0,
        }
      })
    return {
      name,
      exists: !!info,
      latestVersion: info?.latestVersion ?? null,
      minDecryptionVersion: info?.minDecryptionVersion ?? null,
      minEncryptionVersion: info?.minEncryptionVersion ?? null,
      minAvailableVersion: info?.minAvailableVersion ?? null,
      versions,
      rows: versions.reduce((sum, v) => sum + v.rows, 0),
    }
  }
}

/** A version's state in the KMS (see {@link KekVersionState}). */
export function versionState(info: KekInfo | null, version: number): KekVersionState {
  if (!info || version > info.latestVersion) return 'unknown'
  if (version < info.minAvailableVersion) return 'trimmed'
  if (version < info.minDecryptionVersion) return 'retired'
  return 'active'
}
