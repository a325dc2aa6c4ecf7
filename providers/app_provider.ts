import type { ApplicationService } from '@adonisjs/core/types'
import { DekCache } from '#services/dek_cache'
import { EntryCountCache } from '#services/entry_counts'
import { DekCacheListener } from '#services/dek_cache_invalidation'
import { ReadinessCache } from '#services/health_service'
import type { RewrapConfig } from '#config/rewrap'
import { KekPolicies } from '#services/kek_policies'
import { AuditChainMonitor } from '#services/audit_chain_monitor'
import { AuditExportService } from '#services/audit_export_service'
import { Clock } from '#services/clock'
import { ConsoleApprovals, StoredApprovals } from '#services/console_approvals'
import { AuditVerdictCache } from '#services/console_service'
import { RequestLatencyRecorder } from '#services/request_latency_recorder'
import ShieldMiddleware from '@adonisjs/shield/shield_middleware'

/**
 * Binds the app's own singletons.
 */
export default class AppProvider {
  #listener: DekCacheListener | null = null
  #recorder: RequestLatencyRecorder | null = null

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
    this.app.container.singleton(ReadinessCache, () => new ReadinessCache())
    // One periodic audit chain check per process, behind /metrics.
    this.app.container.singleton(AuditChainMonitor, async (resolver) => {
      const audits = await resolver.make(AuditExportService)
      const clock = await resolver.make(Clock)
      return new AuditChainMonitor(
        () => audits.verify(),
        () => clock.now().getTime()
      )
    })
    this.app.container.singleton(AuditVerdictCache, () => new AuditVerdictCache())
    // The foreground latency of background runs' budget: one recorder per process.
    this.app.container.singleton(RequestLatencyRecorder, () => {
      const config = this.app.config.get<RewrapConfig>('rewrap').rotation.latencyBudget
      return new RequestLatencyRecorder(config.recorder)
    })
    // Shield's own provider binds its middleware per resolution: every request built its five
    // guards again (CSP directives normalised, Edge imported again). They keep no request
    // state, so one instance serves every request (the same construction, once).
    this.app.container.singleton(ShieldMiddleware, async () => {
      const config = this.app.config.get<ConstructorParameters<typeof ShieldMiddleware>[0]>(
        'shield',
        {}
      )
      const encryption = await this.app.container.make('encryption')
      const edge = this.app.usingEdgeJS ? await import('edge.js') : undefined
      return new ShieldMiddleware(config, encryption.use(), edge?.default)
    })
    // The console's Approvals panel: the stored requests and the dual-control switch.
    this.app.container.bind(ConsoleApprovals, (resolver) => resolver.make(StoredApprovals))
    this.app.container.singleton(DekCacheListener, async (resolver) => {
      const config = this.app.config.get<RewrapConfig>('rewrap').dekCache.invalidation
      const connection = this.app.config.get<{ connectionString: string }>(
        'database.connections.postgres.connection'
      )
      const logger = await resolver.make('logger')
      return new DekCacheListener(await resolver.make(DekCache), {
        ...config,
        connectionString: connection.connectionString,
        logger,
      })
    })
  }

  /**
   * Processes that serve reads (the HTTP server; the test process, which
   * runs one) listen for DEK cache revocations.
   */
  async ready() {
    if (!['web', 'test'].includes(this.app.getEnvironment())) return
    // The HTTP server writes its request timings for the latency budget (docs/architecture.md).
    if (this.app.getEnvironment() === 'web') {
      this.#recorder = await this.app.container.make(RequestLatencyRecorder)
      this.#recorder.start()
    }
    this.#listener = await this.app.container.make(DekCacheListener)
    await this.#listener.start()
  }

  /**
   * Closes the listening connection.
   */
  async shutdown() {
    await this.#recorder?.stop()
    await this.#listener?.stop()
  }
}
