/*
|--------------------------------------------------------------------------
| Console service
|--------------------------------------------------------------------------
|
| Everything GET /console shows, from the services that already answer it:
| the rotation status report (KEKs, running runs), the run lists (rotations
| and re-encrypts), the audit trail and its verification, the readiness
| report, the approvals view and the scheduler's settings. It only reads;
| the page's one act (cancel a run) goes through KeyRotationService or
| ReencryptService, as the JSON API's cancel does.
|
| The audit chain is verified once per head: verification reads every
| record, so its verdict is kept until a record is appended.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import type { AuditChainVerdict } from '#app/governance/audit_chain'
import type { RewrapConfig } from '#config/rewrap'
import { AuditExportService } from '#services/audit_export_service'
import { AuditService } from '#services/audit_service'
import { Clock } from '#services/clock'
import { ConsoleApprovals, type ConsoleApprovalsView } from '#services/console_approvals'
import { HealthService, type ReadinessReport } from '#services/health_service'
import { KekPolicies } from '#services/kek_policies'
import { KeyRotationService } from '#services/key_rotation_service'
import { ReencryptService } from '#services/reencrypt_service'
import { RotationStatusService } from '#services/rotation_status_service'
import { ReencryptRunTransformer } from '#transformers/reencrypt_run_transformer'
import { RunTransformer } from '#transformers/run_transformer'
import {
  consoleAuditLine,
  consoleKek,
  consoleReencrypt,
  consoleRun,
  type ConsoleAuditLine,
  type ConsoleKek,
  type ConsoleReencrypt,
  type ConsoleRun,
} from '#transformers/console_transformer'

/** Recent runs the Runs panel lists. */
export const RECENT_RUNS = 20

/** Recent re-encrypt runs the Re-encrypts panel lists. */
export const RECENT_REENCRYPTS = 10

/** Audit records the Audit panel lists. */
export const LATEST_AUDIT_RECORDS = 10

/** An audit verdict and the head (`seq:SAID`) it covered. */
export interface CoveredVerdict {
  head: string
  verdict: AuditChainVerdict
}

/**
 * The last audit verification of this process. Verifying reads and checks
 * every record, so a page view does not wait for it once one verdict
 * exists: when the head moved, the last verdict is answered (with the head
 * it covered) while the new head is verified in the background (one at a
 * time); the first view waits.
 */
export class AuditVerdictCache {
  #last: CoveredVerdict | null = null
  #inflight: { head: string; done: Promise<CoveredVerdict> } | null = null

  /** The verdict for `head`, or the last one while `head` is being verified. */
  async get(head: string, verify: () => Promise<AuditChainVerdict>): Promise<CoveredVerdict> {
    if (this.#last?.head === head) return this.#last
    if (this.#inflight?.head !== head) {
      const done = verify()
        .then((verdict) => (this.#last = { head, verdict }))
        .finally(() => {
          if (this.#inflight?.done === done) this.#inflight = null
        })
      this.#inflight = { head, done }
    }
    if (this.#last) {
      this.#inflight.done.catch(() => {})
      return this.#last
    }
    return this.#inflight.done
  }
}

/** The scheduler's settings and its latest run (the scheduler is its own process). */
export interface ConsoleScheduler {
  schedule: string
  managedKeks: string[]
  lastRun: ConsoleRun | null
}

/** Everything the console page shows. */
export interface ConsolePage {
  generatedAt: string
  countsAsOf: string
  keks: ConsoleKek[]
  running: ConsoleRun[]
  recent: ConsoleRun[]
  /** Re-encrypt runs: the running ones (stalled included) and the recent ones. */
  reencrypts: { running: ConsoleReencrypt[]; recent: ConsoleReencrypt[] }
  /** The latest records; the chain verdict and the head (`seq:SAID`) it covered. */
  audit: { lines: ConsoleAuditLine[]; verdict: AuditChainVerdict; verifiedHead: string }
  health: ReadinessReport
  scheduler: ConsoleScheduler
  approvals: ConsoleApprovalsView
}

/** The live part the page polls: running runs only (rotations, re-encrypts). */
export interface ConsoleLive {
  generatedAt: string
  running: ConsoleRun[]
  runningReencrypts: ConsoleReencrypt[]
}

/**
 * Gathers the console's panels.
 */
@inject()
export class ConsoleService {
  constructor(
    private status: RotationStatusService,
    private rotations: KeyRotationService,
    private reencrypts: ReencryptService,
    private audit: AuditService,
    private audits: AuditExportService,
    private verdicts: AuditVerdictCache,
    private health: HealthService,
    private approvals: ConsoleApprovals,
    private policies: KekPolicies,
    private clock: Clock
  ) {}

  /** The whole page. */
  async page(): Promise<ConsolePage> {
    const now = this.clock.now()
    const [report, recent, reencrypts, audit, health, approvals] = await Promise.all([
      this.status.status(),
      this.#recentRuns(),
      this.#recentReencrypts(),
      this.#audit(),
      this.health.latest(),
      this.approvals.view(),
    ])
    const running = report.keks.flatMap((kek) => (kek.running ? [consoleRun(kek.running)] : []))
    const scheduled = recent.find((run) => run.trigger === 'scheduler') ?? null
    return {
      generatedAt: now.toISOString(),
      countsAsOf: report.countsAsOf,
      keks: report.keks.map((kek) => consoleKek(kek, now)),
      running,
      recent,
      reencrypts: { running: reencrypts.filter(isRunning), recent: reencrypts },
      audit,
      health,
      scheduler: {
        schedule: app.config.get<RewrapConfig>('rewrap').lifecycle.schedule,
        managedKeks: this.policies.managedNames(),
        lastRun: scheduled,
      },
      approvals,
    }
  }

  /** Running runs of both kinds, among the recent ones, for the live poll. */
  async live(): Promise<ConsoleLive> {
    const [recent, reencrypts] = await Promise.all([this.#recentRuns(), this.#recentReencrypts()])
    return {
      generatedAt: this.clock.now().toISOString(),
      running: recent.filter(isRunning),
      runningReencrypts: reencrypts.filter(isRunning),
    }
  }

  async #recentRuns(): Promise<ConsoleRun[]> {
    const runs = await this.rotations.list({ limit: RECENT_RUNS })
    const [live, pacing] = await Promise.all([
      this.rotations.liveKeks(runs),
      this.rotations.lastPacing(runs),
    ])
    return RunTransformer.transformMany(runs, live, new Map(), pacing).map(consoleRun)
  }

  /** As GET /reencrypts shows them (live locks, last pacing), shaped for the panel. */
  async #recentReencrypts(): Promise<ConsoleReencrypt[]> {
    const runs = await this.reencrypts.list({ limit: RECENT_REENCRYPTS })
    const [live, pacing] = await Promise.all([
      this.reencrypts.liveSources(runs),
      this.reencrypts.lastPacing(runs),
    ])
    return ReencryptRunTransformer.transformMany(runs, live, pacing).map(consoleReencrypt)
  }

  async #audit(): Promise<ConsolePage['audit']> {
    const latest = await this.audit.latest(LATEST_AUDIT_RECORDS)
    const head = latest[0] ? `${latest[0].seq}:${latest[0].record.d}` : 'empty'
    const covered = await this.verdicts.get(head, () => this.audits.verify())
    return {
      lines: latest.map(consoleAuditLine),
      verdict: covered.verdict,
      verifiedHead: covered.head,
    }
  }
}

function isRunning(run: { status: string }): boolean {
  return run.status === 'running'
}
