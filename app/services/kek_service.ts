/*
|--------------------------------------------------------------------------
| KEK service
|--------------------------------------------------------------------------
|
| Creates KEKs and describes them for `kek:list` / `kek:create`: the KEK
| inventory's summary (the KMS's view joined with the rows of
| vault_entries wrapped under each version).
|
*/
import { inject } from '@adonisjs/core'
import { Logger } from '@adonisjs/core/logger'
import { E_KEK_EXISTS } from '#app/errors'
import type { KekInfo } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { countEntries } from '#services/entry_counts'
import { KekInventory, type KekSummary } from '#services/kek_inventory'

/** Result of {@link KekService.create}. */
export interface KekCreateResult {
  created: boolean
  kek: KekSummary
}

/**
 * KEK creation and inventory.
 */
@inject()
export class KekService {
  constructor(
    private kms: KmsManager,
    private inventory: KekInventory,
    private clock: Clock,
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
    const counts = await countEntries({ kekName: name })
    return { created, kek: this.#summary(name, info, counts.get(name)) }
  }

  /**
   * Describes one KEK; null when neither the KMS nor any row knows it.
   */
  async describe(name: string): Promise<KekSummary | null> {
    const driver = await this.kms.forKek(name)
    const info = await driver.readKey(name)
    const counts = await countEntries({ kekName: name })
    if (!info && !counts.has(name)) return null
    return this.#summary(name, info, counts.get(name))
  }

  /**
   * Every KEK a driver lists or rows of vault_entries name, by name.
   */
  async list(): Promise<KekSummary[]> {
    const counts = await countEntries()
    const summaries: KekSummary[] = []
    for (const name of await this.inventory.names(counts.keys())) {
      const driver = await this.kms.forKek(name)
      summaries.push(this.#summary(name, await driver.readKey(name), counts.get(name)))
    }
    return summaries
  }

  #summary(name: string, info: KekInfo | null, rows = new Map<number, number>()): KekSummary {
    return this.inventory.summary(name, info, rows, this.clock.now())
  }
}
