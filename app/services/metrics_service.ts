/*
|--------------------------------------------------------------------------
| Metrics service
|--------------------------------------------------------------------------
|
| GET /metrics: Prometheus text exposition from a prom-client registry of
| Rewrap's own (not prom-client's global default). Gauges are computed at
| scrape time from the rotation status (row counts cached a few seconds,
| see entry_counts.ts) and the DEK cache; the KMS latency
| histogram and error counter are fed by the driver instrumentation in
| app/kms/instrumented_driver.ts. The audit chain gauges report the last
| periodic verification (audit_chain_monitor.ts); the pacing gauges the
| running runs' last judgements (run_pacing.ts). Labels carry KEK names,
| versions, run statuses, driver names, operations and error codes only.
| The alerting rules built on these names: docs/prometheus/rewrap.rules.yml.
|
*/
import { inject } from '@adonisjs/core'
import { Counter, Gauge, Registry } from 'prom-client'
import { kmsErrors, kmsRequestDuration } from '#kms/instrumented_driver'
import { AuditChainMonitor } from '#services/audit_chain_monitor'
import { DekCache } from '#services/dek_cache'
import { RotationStatusService, type RotationStatusReport } from '#services/rotation_status_service'
import { RunPacingStore, type ReencryptPacing } from '#services/run_pacing'

/** Rewrap's registry: one per process, shared by every scrape. */
export const metricsRegistry = new Registry()
metricsRegistry.registerMetric(kmsRequestDuration)
metricsRegistry.registerMetric(kmsErrors)

const registers = [metricsRegistry]

const gauges = {
  entries: new Gauge({
    name: 'rewrap_entries',
    help: 'Rows of vault_entries per KEK and KEK version (counted at most a few seconds ago)',
    labelNames: ['kek', 'version'] as const,
    registers,
  }),
  staleEntries: new Gauge({
    name: 'rewrap_entries_stale',
    help: 'Rows of vault_entries below the KEK latest version (to rewrap)',
    labelNames: ['kek'] as const,
    registers,
  }),
  kmsReachable: new Gauge({
    name: 'rewrap_kek_kms_reachable',
    help: '1 when the KMS answered the KEK read of this scrape, 0 when it failed',
    labelNames: ['kek'] as const,
    registers,
  }),
  latestVersion: new Gauge({
    name: 'rewrap_kek_latest_version',
    help: 'Latest version of the KEK in the KMS',
    labelNames: ['kek'] as const,
    registers,
  }),
  keyAge: new Gauge({
    name: 'rewrap_kek_key_age_seconds',
    help: 'Age of the KEK latest version, from the KMS creation time',
    labelNames: ['kek'] as const,
    registers,
  }),
  nextDue: new Gauge({
    name: 'rewrap_kek_rotation_due_timestamp_seconds',
    help: 'When the KEK is due for rotation (latest version creation + cryptoperiod), unix seconds',
    labelNames: ['kek'] as const,
    registers,
  }),
  dueNotAuthorized: new Gauge({
    name: 'rewrap_kek_rotation_due_not_authorized',
    help: '1 when the KEK rotation is due and no valid dual-approved standing policy allows the scheduler to run it',
    labelNames: ['kek'] as const,
    registers,
  }),
  running: new Gauge({
    name: 'rewrap_rotation_running',
    help: '1 while a rotation run of the KEK is running',
    labelNames: ['kek'] as const,
    registers,
  }),
  stalled: new Gauge({
    name: 'rewrap_rotation_stalled',
    help: '1 while the KEK has a running rotation run that no live process works on (resume it)',
    labelNames: ['kek'] as const,
    registers,
  }),
  runDone: new Gauge({
    name: 'rewrap_rotation_rows_done',
    help: 'Rows handled so far by the running rotation run of the KEK',
    labelNames: ['kek'] as const,
    registers,
  }),
  runTotal: new Gauge({
    name: 'rewrap_rotation_rows_planned',
    help: 'Rows to handle by the running rotation run of the KEK',
    labelNames: ['kek'] as const,
    registers,
  }),
  runRate: new Gauge({
    name: 'rewrap_rotation_rows_per_second',
    help: 'Average rate of the running rotation run of the KEK, rows per second',
    labelNames: ['kek'] as const,
    registers,
  }),
  lastSuccess: new Gauge({
    name: 'rewrap_rotation_last_success_timestamp_seconds',
    help: 'When the last completed rotation run of the KEK finished, unix seconds',
    labelNames: ['kek'] as const,
    registers,
  }),
  lastRunStatus: new Gauge({
    name: 'rewrap_rotation_last_run_status',
    help: '1 for the status of the newest finished rotation run of the KEK (completed, completed_with_errors, failed, cancelled)',
    labelNames: ['kek', 'status'] as const,
    registers,
  }),
  failedRows: new Gauge({
    name: 'rewrap_rotation_failed_rows',
    help: 'Rows the KEK current rotation run (the running one, else the newest finished) could not rewrap',
    labelNames: ['kek'] as const,
    registers,
  }),
  chunks: new Gauge({
    name: 'rewrap_rotation_chunks',
    help: "Chunks of a KEK's running distributed rotation, by status (pending, running, done)",
    labelNames: ['kek', 'status'],
    registers,
  }),
  stalledChunks: new Gauge({
    name: 'rewrap_rotation_chunks_stalled',
    help: "Chunks of a KEK's running distributed rotation whose lease expired (their worker stopped committing)",
    labelNames: ['kek'],
    registers,
  }),
  workerRows: new Gauge({
    name: 'rewrap_rotation_worker_rows',
    help: "Rows handled by each worker in a KEK's running distributed rotation (the chunks it holds or finished)",
    labelNames: ['kek', 'worker'],
    registers,
  }),
  countsAge: new Gauge({
    name: 'rewrap_entries_counts_age_seconds',
    help: 'Age of the cached row counts behind rewrap_entries',
    registers,
  }),
  cacheHitRatio: new Gauge({
    name: 'rewrap_dek_cache_hit_ratio',
    help: 'DEK cache hits / (hits + misses) since the process started (0 before any lookup)',
    registers,
  }),
  dualControl: new Gauge({
    name: 'rewrap_dual_control_enabled',
    help: '1 when master-key acts need approvals (dual control on), 0 when DUAL_CONTROL=off',
    registers,
  }),
  pacingDuty: new Gauge({
    name: 'rewrap_pacing_duty',
    help: 'Share of wall time the running rotation may work under its latency budget (1 = full speed; its last judgement)',
    labelNames: ['kek'] as const,
    registers,
  }),
  pacingP99: new Gauge({
    name: 'rewrap_pacing_foreground_p99_seconds',
    help: 'Foreground request p99 of the last window the running rotation judged',
    labelNames: ['kek'] as const,
    registers,
  }),
  pacingBaseline: new Gauge({
    name: 'rewrap_pacing_baseline_p99_seconds',
    help: 'Idle foreground p99 (measured while the rotation rested) its latency budget is relative to',
    labelNames: ['kek'] as const,
    registers,
  }),
  // A re-encrypt run's own families (not `kek` series of the rotation ones): a rotation of a
  // KEK and a re-encrypt from it may run at once, and neither may overwrite the other.
  reencryptPacingDuty: new Gauge({
    name: 'rewrap_reencrypt_pacing_duty',
    help: 'Share of wall time the running re-encrypt run from a KEK to another may work under its latency budget (1 = full speed; its last judgement)',
    labelNames: ['from', 'to'] as const,
    registers,
  }),
  reencryptPacingP99: new Gauge({
    name: 'rewrap_reencrypt_pacing_foreground_p99_seconds',
    help: 'Foreground request p99 of the last window the running re-encrypt run judged',
    labelNames: ['from', 'to'] as const,
    registers,
  }),
  reencryptPacingBaseline: new Gauge({
    name: 'rewrap_reencrypt_pacing_baseline_p99_seconds',
    help: 'Idle foreground p99 the running re-encrypt run latency budget is relative to',
    labelNames: ['from', 'to'] as const,
    registers,
  }),
  cacheSize: new Gauge({
    name: 'rewrap_dek_cache_entries',
    help: 'DEKs held in the DEK cache',
    registers,
  }),
}

/**
 * The audit chain gauges, registered once the first check has finished: an
 * unlabelled gauge shows 0 from the start, which would read as "broken".
 */
const auditGauges = {
  auditChainOk: new Gauge({
    name: 'rewrap_audit_chain_ok',
    help: '1 when the last periodic verification of the audit chain passed (what audit:verify checks), 0 when it found the chain broken',
    registers: [],
  }),
  auditChainChecked: new Gauge({
    name: 'rewrap_audit_chain_checked_timestamp_seconds',
    help: 'When the last periodic verification of the audit chain finished, unix seconds',
    registers: [],
  }),
}
let auditGaugesRegistered = false

const cacheHits = new Counter({
  name: 'rewrap_dek_cache_hits_total',
  help: 'DEK cache hits since the process started',
  registers,
})
const cacheMisses = new Counter({
  name: 'rewrap_dek_cache_misses_total',
  help: 'DEK cache misses since the process started',
  registers,
})

/** Scrapes run one after another: each resets and refills the gauges. */
let chain: Promise<unknown> = Promise.resolve()

/**
 * Renders the metrics in Prometheus text format.
 */
@inject()
export class MetricsService {
  constructor(
    private statusService: RotationStatusService,
    private dekCache: DekCache,
    private auditChain: AuditChainMonitor,
    private pacing: RunPacingStore
  ) {}

  /** The Content-Type of {@link MetricsService.render}'s output. */
  get contentType(): string {
    return metricsRegistry.contentType
  }

  /**
   * Computes the gauges and returns the exposition text.
   */
  render(): Promise<string> {
    const next = chain.then(async () => {
      const report = await this.statusService.status()
      this.#fill(report)
      // The rotations' pacing came with the report; a failed read costs only these gauges.
      this.#fillReencryptPacing(await this.pacing.runningReencrypts().catch(() => []))
      return metricsRegistry.metrics()
    })
    chain = next.catch(() => {})
    return next
  }

  #fillReencryptPacing(runs: ReencryptPacing[]) {
    for (const { fromKek, toKek, pacing } of runs) {
      const labels = { from: fromKek, to: toKek }
      gauges.reencryptPacingDuty.set(labels, pacing.duty)
      if (pacing.foregroundP99Ms !== null) {
        gauges.reencryptPacingP99.set(labels, pacing.foregroundP99Ms / 1000)
      }
      if (pacing.baselineP99Ms !== null) {
        gauges.reencryptPacingBaseline.set(labels, pacing.baselineP99Ms / 1000)
      }
    }
  }

  #fill(report: RotationStatusReport) {
    for (const gauge of Object.values(gauges)) gauge.reset()
    const now = new Date(report.generatedAt).getTime()
    gauges.dualControl.set(report.governance.dualControl === 'on' ? 1 : 0)
    gauges.countsAge.set(Math.max(0, (now - new Date(report.countsAsOf).getTime()) / 1000))
    for (const kek of report.keks) {
      const labels = { kek: kek.name }
      for (const version of kek.versions) {
        gauges.entries.set({ kek: kek.name, version: String(version.version) }, version.rows)
      }
      gauges.staleEntries.set(labels, kek.staleRows)
      gauges.kmsReachable.set(labels, kek.kmsError ? 0 : 1)
      if (kek.latestVersion !== null) gauges.latestVersion.set(labels, kek.latestVersion)
      const latest = kek.versions.find((v) => v.version === kek.latestVersion)
      if (latest?.ageSeconds !== null && latest?.ageSeconds !== undefined) {
        gauges.keyAge.set(labels, latest.ageSeconds)
      }
      if (kek.nextRotationDueAt) {
        gauges.nextDue.set(labels, Date.parse(kek.nextRotationDueAt) / 1000)
      }
      gauges.dueNotAuthorized.set(labels, kek.authorization === null ? 0 : 1)
      gauges.running.set(labels, kek.running ? 1 : 0)
      gauges.stalled.set(labels, kek.running?.stalled ? 1 : 0)
      if (kek.running) {
        gauges.runDone.set(labels, kek.running.progress.done)
        gauges.runTotal.set(labels, kek.running.progress.total)
        gauges.runRate.set(labels, kek.running.progress.rowsPerSecond)
        const pacing = kek.running.pacing
        if (pacing) {
          gauges.pacingDuty.set(labels, pacing.duty)
          if (pacing.foregroundP99Ms !== null) {
            gauges.pacingP99.set(labels, pacing.foregroundP99Ms / 1000)
          }
          if (pacing.baselineP99Ms !== null) {
            gauges.pacingBaseline.set(labels, pacing.baselineP99Ms / 1000)
          }
        }
        const chunks = kek.running.chunks
        if (chunks) {
          for (const status of ['pending', 'running', 'done'] as const) {
            gauges.chunks.set({ kek: kek.name, status }, chunks[status])
          }
          gauges.stalledChunks.set(labels, chunks.stalled)
          for (const worker of chunks.workers) {
            gauges.workerRows.set({ kek: kek.name, worker: worker.workerId }, worker.rows)
          }
        }
      }
      if (kek.lastSuccessAt) gauges.lastSuccess.set(labels, Date.parse(kek.lastSuccessAt) / 1000)
      if (kek.lastRun) gauges.lastRunStatus.set({ kek: kek.name, status: kek.lastRun.status }, 1)
      const current = kek.running ?? kek.lastRun
      gauges.failedRows.set(labels, current?.failed ?? 0)
    }
    const audit = this.auditChain.latest()
    if (audit) {
      if (!auditGaugesRegistered) {
        for (const gauge of Object.values(auditGauges)) metricsRegistry.registerMetric(gauge)
        auditGaugesRegistered = true
      }
      auditGauges.auditChainOk.set(audit.ok ? 1 : 0)
      auditGauges.auditChainChecked.set(audit.checkedAt / 1000)
    }
    const { hits, misses, size } = this.dekCache.stats()
    gauges.cacheHitRatio.set(hits + misses > 0 ? hits / (hits + misses) : 0)
    gauges.cacheSize.set(size)
    cacheHits.reset()
    cacheHits.inc(hits)
    cacheMisses.reset()
    cacheMisses.inc(misses)
  }
}
