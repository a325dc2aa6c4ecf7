/*
|--------------------------------------------------------------------------
| Rotation status service
|--------------------------------------------------------------------------
|
| What dashboards, /metrics and GET /rotations/status show: per KEK (from
| the KEK inventory) the KMS's versions (ages from the KMS's own creation
| times, retired / trimmed state), the next due date, rows per version
| (from the shared EntryCountCache; responses say how old the counts
| are), the running run's progress and pacing and the last runs' results.
| It only reads: runs are started and cancelled by KeyRotationService.
|
*/
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import type { KekInfo } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { mapLimited, withTimeout } from '#app/utils/async'
import { safeMessage } from '#app/errors'
import { Clock } from '#services/clock'
import { DualControl, type DualControlSetting } from '#services/dual_control'
import { EntryCountCache } from '#services/entry_counts'
import { KekInventory, type KekSummary } from '#services/kek_inventory'
import { KekPolicies } from '#services/kek_policies'
import { quotaStatus, type QuotaStatus } from '#services/quota_estimate'
import type { RewrapConfig } from '#config/rewrap'
import app from '@adonisjs/core/services/app'
import { KeyRotationService } from '#services/key_rotation_service'
import { ApprovalGate } from '#services/approval_gate'
import { DUE_NOT_AUTHORIZED } from '#services/rotation_scheduler'
import { roleVerifier } from '#services/role_verifiers'
import { RotationStore, type RotationRun } from '#services/rotation_store'
import { iso, RunTransformer, type RotationRunView } from '#transformers/run_transformer'
import type { ChunkStats } from '#services/chunk_store'
import type { RunPacingView } from '#services/run_pacing'

/** One day in ms (cryptoperiods are configured in ms, reported in days). */
const DAY_MS = 86_400_000

/** KMS reads of one status report in flight at once. */
const KMS_CONCURRENCY = 8

/** A KMS read slower than this is reported as an error (a scrape must answer). */
const KMS_TIMEOUT_MS = 5_000

/** One KEK in the status report: its inventory summary, rotation state and runs. */
export interface KekStatus extends Omit<KekSummary, 'exists'> {
  /** False when rows name a KEK the KMS does not know; null when the KMS could not be asked. */
  exists: boolean | null
  /** `CODE: message` when the KMS read failed (versions then come from rows only). */
  kmsError: string | null
  /** The KMS driver holding the KEK. */
  driver: string
  /** Rows below the latest version (to rewrap). */
  staleRows: number
  cryptoperiodDays: number
  /** Latest version's creation + cryptoperiod. */
  nextRotationDueAt: string | null
  /** True when nextRotationDueAt has passed. */
  rotationDue: boolean
  /**
   * Dual control, for a due rotation: the SAID of the standing policy the
   * scheduler runs it under; null when none is valid (or not due, or dual control off).
   */
  standingPolicy: string | null
  /** "due, not authorized" when the rotation is due and no valid standing policy allows it; else null. */
  authorization: typeof DUE_NOT_AUTHORIZED | null
  running: RotationRunView | null
  /** The newest run that is not running (completed, with errors, failed or cancelled). */
  lastRun: RotationRunView | null
  /** finished_at of the newest `completed` run. */
  lastSuccessAt: string | null
  /**
   * The KMS's requests/s budget as rows/s (cloud drivers) and, while a run
   * is held to it, `quota-bound: ETA …`.
   */
  quota: QuotaStatus
}

/** GET /rotations/status. */
export interface RotationStatusReport {
  generatedAt: string
  /** When the row counts were taken (cached up to `countsMaxAgeSeconds`). */
  countsAsOf: string
  countsMaxAgeSeconds: number
  /**
   * Dual control (`off` only with DUAL_CONTROL=off: acts run without
   * approvals) and the role verifier (`builtin`: not anchored in GLEIF's root of trust).
   */
  governance: {
    dualControl: DualControlSetting
    roleVerifier: { name: string; gleifAnchored: boolean }
  }
  keks: KekStatus[]
}

/** A KEK's running run, newest other run and last success time. */
interface KekRuns {
  running: RotationRun | null
  last: RotationRun | null
  lastSuccessAt: Date | null
}

/**
 * The rotation status report.
 */
@inject()
export class RotationStatusService {
  constructor(
    private kms: KmsManager,
    private inventory: KekInventory,
    private entryCounts: EntryCountCache,
    private store: RotationStore,
    private rotations: KeyRotationService,
    private clock: Clock,
    private policies: KekPolicies,
    private gate: ApprovalGate,
    private dualControl: DualControl
  ) {}

  /**
   * Per KEK (known to the KMS, named by rows or managed in config; one
   * when `kekName` is given): versions, ages, counts, due date,
   * running and last runs.
   */
  async status(kekName?: string): Promise<RotationStatusReport> {
    const now = this.clock.now()
    const { counts, asOf } = await this.entryCounts.get(now)
    const names = kekName
      ? [kekName]
      : await this.inventory.names([...counts.keys(), ...this.policies.managedNames()], {
          bestEffort: true,
          timeoutMs: KMS_TIMEOUT_MS,
        })
    const runs = await this.#runsByKek(kekName)
    const runningRuns = [...runs.values()].flatMap((r) => (r.running ? [r.running] : []))
    // One query each for all the running runs: their locks, chunks and pacing.
    const [live, chunks, pacing] = await Promise.all([
      this.rotations.liveKeks(runningRuns),
      this.rotations.chunkStats(runningRuns),
      this.rotations.lastPacing(runningRuns),
    ])
    const infos = await mapLimited(names, KMS_CONCURRENCY, (name) => this.#readKey(name))
    const keks: KekStatus[] = []
    const indexes = names.map((_, index) => index)
    const authorizations = await mapLimited(indexes, KMS_CONCURRENCY, async (index) => {
      const name = names[index]
      const info = infos[index].info
      const period = this.policies.policy(name).cryptoperiodMs
      const latest = info?.versions.find((v) => v.version === info.latestVersion)?.createdAt
      const due = latest !== undefined && latest.getTime() + period <= now.getTime()
      if (!due || !this.gate.dualControl) {
        return { standingPolicy: null, authorization: null } as const
      }
      const found = await this.gate.standingPolicy(name, period)
      return {
        standingPolicy: found.said,
        authorization: found.said === null ? DUE_NOT_AUTHORIZED : null,
      } as const
    })
    names.forEach((name, index) => {
      const { info, error, ceiling } = infos[index]
      const perVersion = counts.get(name) ?? new Map<number, number>()
      if (kekName && !info && !error && perVersion.size === 0 && !runs.has(name)) return
      const summary = this.inventory.summary(name, info, perVersion, now)
      keks.push({
        ...summary,
        exists: error ? null : summary.exists,
        kmsError: error,
        driver: this.kms.driverNameFor(name),
        ...this.#rotationState(
          summary,
          info,
          this.policies.policy(name).cryptoperiodMs / DAY_MS,
          now
        ),
        ...authorizations[index],
        ...this.#runViews(runs.get(name), live.has(name), chunks, pacing),
        quota: this.#quota(ceiling, runs.get(name)?.running ?? null),
      })
    })
    const verifier = await roleVerifier()
    return {
      generatedAt: now.toISOString(),
      countsAsOf: asOf.toISOString(),
      countsMaxAgeSeconds: this.entryCounts.maxAgeSeconds,
      governance: {
        dualControl: this.dualControl.setting,
        roleVerifier: { name: verifier.name, gleifAnchored: verifier.gleifAnchored },
      },
      keks,
    }
  }

  /**
   * The KMS's view of a KEK, or the (secret-free) reason it could not be
   * read; and its driver's rows/s ceiling.
   */
  async #readKey(
    name: string
  ): Promise<{ info: KekInfo | null; error: string | null; ceiling: number | undefined }> {
    let ceiling: number | undefined
    try {
      const driver = await this.kms.forKek(name)
      ceiling = driver.rewrapRowsPerSecondCeiling?.()
      const info = await withTimeout(driver.readKey(name), KMS_TIMEOUT_MS)
      return { info, error: null, ceiling }
    } catch (error) {
      return { info: null, error: safeMessage(error), ceiling }
    }
  }

  /** The ceiling, and whether the running run is held to it (its throttle from its options). */
  #quota(ceiling: number | undefined, running: RotationRun | null): QuotaStatus {
    if (!running) return quotaStatus(ceiling, null)
    const config = app.config.get<RewrapConfig>('rewrap').rotation
    const option = (key: string, fallback: number) => {
      const value = running.options[key]
      return typeof value === 'number' && Number.isFinite(value) ? value : fallback
    }
    const progress = RunTransformer.progress(running)
    return quotaStatus(ceiling, {
      left: progress.total - progress.done,
      rowsPerSecond: progress.rowsPerSecond,
      settings: {
        estimateRowsPerSecond: config.estimateRowsPerSecond,
        batchSize: option('batchSize', config.batchSize),
        sleepMs: option('sleepMs', config.sleepMs),
        maxRate: option('maxRate', config.maxRate),
      },
    })
  }

  /** Stale rows and the due date from the latest version's creation. */
  #rotationState(summary: KekSummary, info: KekInfo | null, cryptoperiodDays: number, now: Date) {
    const latest = summary.latestVersion
    const staleRows = summary.versions
      .filter((v) => latest === null || v.version < latest)
      .reduce((sum, v) => sum + v.rows, 0)
    const latestCreated = info?.versions.find((v) => v.version === latest)?.createdAt
    const due = latestCreated
      ? new Date(latestCreated.getTime() + cryptoperiodDays * 86_400_000)
      : null
    return {
      staleRows,
      cryptoperiodDays,
      nextRotationDueAt: iso(due),
      rotationDue: due !== null && due.getTime() <= now.getTime(),
    }
  }

  #runViews(
    runs: KekRuns | undefined,
    live: boolean,
    chunks: Map<string, ChunkStats>,
    pacing: Map<string, RunPacingView>
  ) {
    const running = runs?.running
    return {
      running: running
        ? RunTransformer.transform(
            running,
            live,
            chunks.get(running.id) ?? null,
            pacing.get(running.id) ?? null
          )
        : null,
      lastRun: runs?.last ? RunTransformer.transform(runs.last) : null,
      lastSuccessAt: iso(runs?.lastSuccessAt),
    }
  }

  /** Running run, newest other run and last success time, per KEK. */
  async #runsByKek(kekName?: string): Promise<Map<string, KekRuns>> {
    const { rows } = await db.rawQuery(
      `SELECT kek_name,
              (SELECT id FROM key_rotations r WHERE r.kek_name = k.kek_name AND r.status = 'running'
                ORDER BY id DESC LIMIT 1) AS running_id,
              (SELECT id FROM key_rotations r WHERE r.kek_name = k.kek_name AND r.status <> 'running'
                ORDER BY id DESC LIMIT 1) AS last_id,
              (SELECT max(finished_at) FROM key_rotations r
                WHERE r.kek_name = k.kek_name AND r.status = 'completed') AS last_success_at
         FROM (SELECT DISTINCT kek_name FROM key_rotations ${kekName ? 'WHERE kek_name = ?' : ''}) k`,
      kekName ? [kekName] : []
    )
    const list = rows as Array<Record<string, any>>
    // Every run the report shows, in one query (not two per KEK).
    const runs = await this.store.findMany(
      list.flatMap((row) => [row.running_id, row.last_id].filter(Boolean).map(String))
    )
    const out = new Map<string, KekRuns>()
    for (const row of list) {
      out.set(row.kek_name, {
        running: row.running_id ? (runs.get(String(row.running_id)) ?? null) : null,
        last: row.last_id ? (runs.get(String(row.last_id)) ?? null) : null,
        lastSuccessAt: row.last_success_at ?? null,
      })
    }
    return out
  }
}
