import type { ApplicationService } from '@adonisjs/core/types'
import { DekCache } from '#services/dek_cache'
import { EntryCountCache } from '#services/entry_counts'
import type { RewrapConfig } from '#config/rewrap'
import { KekPolicies } from '#services/kek_policies'

/**
 * Binds the app's own singletons.
 */
export default class AppProvider {
  constructor(protected app: ApplicationService) {}

  /**
   * Registers bindings.
   */
  register() {
    this.app.container.singleton(DekCache, () => {
      const config = this.app.config.get<RewrapConfig>('rewrap')
      return new DekCache(config.dekCache.maxEntries, config.dekCache.ttlMs)
    })
    this.app.container.singleton(KekPolicies, () => {
      const { lifecycle } = this.app.config.get<RewrapConfig>('rewrap')
      return new KekPolicies(lifecycle.keks, lifecycle.defaults)
    })
    // One row-count cache per process: status, /metrics and /health/ready share it.
    this.app.container.singleton(EntryCountCache, () => new EntryCountCache())
  }
}
