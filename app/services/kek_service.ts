/*
|--------------------------------------------------------------------------
| KEK service
|--------------------------------------------------------------------------
|
| Creates KEKs and describes them: the KMS's view (versions, latest,
| min_decryption_version) joined with the rows of vault_entries wrapped
| under each version.
|
*/
import { inject } from '@adonisjs/core'
import { Logger } from '@adonisjs/core/logger'
import db from '@adonisjs/lucid/services/db'
import { E_KEK_EXISTS } from '#app/errors'
import type { KekInfo, KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'

/** One version of a KEK as `kek:list` shows it. */
export interface KekVersionSummary {
  version: number
  /** Null when the KMS no longer reports the version (retired or trimmed). */
  createdAt: string | null
  /** Seconds since creation (null when unknown). */
  ageSeconds: number | null
  /** Rows of vault_entries whose DEK is wrapped under this version. */
  rows: number
  /** False when below min_decryption_version or trimmed: rows here cannot be read. */
  decryptable: boolean
}

/** One KEK as `kek:list` shows it. */
export interface KekSummary {
  name: string
  /** False when rows name a KEK the KMS does not know. */
  exists: boolean
  latestVersion: number | null
  minDecryptionVersion: number | null
  minEncryptionVersion: number | null
  minAvailableVersion: number | null
  versions: KekVersionSummary[]
  rows: number
}

/** Result of {@link KekService.create}. */
export interface KekCreateResult {
  created: boolean
  kek: KekSummary
}

/** A driver that can list its KEK names (optional capability). */
interface ListingDriver extends KmsDriver {
  listKeys(): Promise<string[]>
}

function canList(driver: KmsDriver): driver is ListingDriver {
  return typeof (driver as Partial<ListingDriver>).listKeys === 'function'
}

/**
 * KEK creation and inventory.
 */
@inject()
export class KekService {
  /** Clock (swappable in tests). */
  now: () => Date = () => new Date()

  constructor(
    private kms: KmsManager,
    private logger?: Logger
  ) {}

  /**
   * Creates a KEK (version 1). With `ifMissing`, an existing KEK is not an
   * error: it is described and `created` is false. Otherwise E_KEK_EXISTS.
   */
  async create(name: string, options: { ifMissing?: boolean } = {}): Promise<KekCreateResult> {
    const driver = await this.kms.forKek(name)
    let info: KekInfo
    let created = true
    try {
      info = await driver.createKey(name)
    } catch (error) {
      if (!(error instanceof E_KEK_EXISTS) || !options.ifMissing) throw error
      const existing = await driver.readKey(name)
      if (!existing) throw error
      info = existing
      created = false
    }
    if (created) this.logger?.info({ kekName: name }, 'KEK created')
    const counts = await this.#counts(name)
    return { created, kek: this.#summary(name, info, counts.get(name) ?? new Map()) }
  }

  /**
   * Describes one KEK; null when neither the KMS nor any row knows it.
   */
  async describe(name: string): Promise<KekSummary | null> {
    const driver = await this.kms.forKek(name)
    const info = await driver.readKey(name)
    const all = await this.#counts(name)
    const counts = all.get(name)
    if (!info && !counts) return null
    return this.#summary(name, info, counts ?? new Map())
  }

  /**
   * Every KEK the KMS lists (when its driver can list) or that rows of
   * vault_entries name, by name.
   */
  async list(): Promise<KekSummary[]> {
    const counts = await this.#counts()
    const names = new Set(counts.keys())
    const drivers = new Set<string>([
      String(this.kms.config.default),
      ...Object.values(this.kms.config.keks ?? {}).map(String),
    ])
    for (const driverName of drivers) {
      const driver = await this.kms.use(driverName)
      if (canList(driver)) {
        for (const name of await driver.listKeys()) {
          const owner = String(this.kms.config.keks?.[name] ?? this.kms.config.default)
          if (owner === driverName) names.add(name)
        }
      }
    }
    const summaries: KekSummary[] = []
    for (const name of [...names].sort()) {
      const driver = await this.kms.forKek(name)
      const info = await driver.readKey(name)
      summaries.push(this.#summary(name, info, counts.get(name) ?? new Map()))
    }
    return summaries
  }

  /** kek_name → (kek_version → rows). */
  async #counts(name?: string): Promise<Map<string, Map<number, number>>> {
    const query = db
      .from('vault_entries')
      .select('kek_name', 'kek_version')
      .count('* as rows')
      .groupBy('kek_name', 'kek_version')
    if (name !== undefined) query.where('kek_name', name)
    const out = new Map<string, Map<number, number>>()
    for (const row of await query) {
      let perVersion = out.get(row.kek_name)
      if (!perVersion) out.set(row.kek_name, (perVersion = new Map()))
      perVersion.set(Number(row.kek_version), Number(row.rows))
    }
    return out
  }

  #summary(name: string, info: KekInfo | null, counts: Map<number, number>): KekSummary {
    const now = this.now().getTime()
    const created = new Map((info?.versions ?? []).map((v) => [v.version, v.createdAt]))
    const versions = [...new Set([...created.keys(), ...counts.keys()])].sort((a, b) => a - b)
    const list = versions.map((version): KekVersionSummary => {
      const at = created.get(version)
      return {
        version,
        createdAt: at ? at.toISOString() : null,
        ageSeconds: at ? Math.max(0, Math.floor((now - at.getTime()) / 1000)) : null,
        rows: counts.get(version) ?? 0,
        decryptable:
          !!info &&
          version >= info.minDecryptionVersion &&
          version <= info.latestVersion &&
          created.has(version),
      }
    })
    return {
      name,
      exists: !!info,
      latestVersion: info?.latestVersion ?? null,
      minDecryptionVersion: info?.minDecryptionVersion ?? null,
      minEncryptionVersion: info?.minEncryptionVersion ?? null,
      minAvailableVersion: info?.minAvailableVersion ?? null,
      versions: list,
      rows: list.reduce((sum, v) => sum + v.rows, 0),
    }
  }
}
