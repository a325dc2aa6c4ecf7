/*
|--------------------------------------------------------------------------
| Rotation status service
|--------------------------------------------------------------------------
|
| What dashboards, /metrics and the rotations API show: per KEK the KMS's
| versions (ages from the KMS's own creation times, retired / trimmed
| state), the next due date, rows per version, the running run's progress
| and the last runs' results; and the run list / detail / start / cancel
| behind the admin API.
|
| Rows per version come from one `GROUP BY kek_name, kek_version` that
| Postgres answers from the (kek_name, kek_version, id) index (an
| index-only scan once the visibility map is current), cached in memory
| for a few seconds and shared by every caller in the process, with one
| query in flight at most. Responses say how old the counts are.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { E_ROTATION_NOT_FOUND } from '#app/errors'
import type { KekInfo, KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { KeyRotationService } from '#services/key_rotation_service'
import { RotationLock } from '#services/rotation_lock'
import { RotationStore, type CancelledBy, type RotationRun } from '#services/rotation_store'
import type { StartRotationInput } from '#validators/rotation_api'

/** Cryptoperiod used when config/rewrap.ts sets none: 90 days. */
export const DEFAULT_CRYPTOPERIOD_DAYS = 90

/** How long row counts are served from memory. */
export const COUNTS_TTL_MS = 5_000

/** Rows per KEK and version, and when they were counted. */
export interface EntryCounts {
  /** kek_name → (kek_version → rows). */
  counts: Map<string, Map<number, number>>
  asOf: Date
}

/**
 * Rows of vault_entries per KEK and version: one index-only GROUP BY,
 * cached for `ttlMs`, at most one query in flight.
 */
export class EntryCountCache {
  #value: EntryCounts | null = null
  #pending: Promise<EntryCounts> | null = null

  constructor(private ttlMs: number = COUNTS_TTL_MS) {}

  /**
   * The counts, fresh from the table when the cached ones are older than the TTL.
   */
  async get(now: Date = new Date()): Promise<EntryCounts> {
    if (this.#value && now.getTime() - this.#value.asOf.getTime() < this.ttlMs) {
      return this.#value
    }
    if (!this.#pending) {
      this.#pending = this.#load().finally(() => {
        this.#pending = null
      })
    }
    return this.#pending
  }

  /**
   * Forgets the cached counts (tests; after bulk changes).
   */
  clear() {
    this.#value = null
  }

  async #load(): Promise<EntryCounts> {
    const asOf = new Date()
    const { rows } = await db.rawQuery(
      `SELECT kek_name, kek_version, count(*)::bigint AS n FROM vault_entries
        GROUP BY kek_name, kek_version`
    )
    const counts = new Map<string, Map<number, number>>()
    for (const row of rows as Array<{ kek_name: string; kek_version: number; n: string }>) {
      let perVersion = counts.get(row.kek_name)
      if (!perVersion) counts.set(row.kek_name, (perVersion = new Map()))
      perVersion.set(Number(row.kek_version), Number(row.n))
    }
    this.#value = { counts, asOf }
    return this.#value
  }
}

/** The process-wide count cache (status, metrics and health share it). */
export const entryCounts = new EntryCountCache()

/** KMS reads of one status report in flight at once. */
const KMS_CONCURRENCY = 8

/** A KMS read slower than this is reported as an error (a scrape must answer). */
const KMS_TIMEOUT_MS = 5_000

/** `CODE: message` for Rewrap's own errors (never secret), the bare code or class otherwise. */
export function describeFailure(error: unknown): string {
  const err = error as { code?: string; message?: string; name?: string }
  if (err?.code?.startsWith('E_')) return `${err.code}: ${err.message}`
  if (err?.code) return err.code
  return err?.name ?? 'unknown error'
}

/** `work`, or an E_TIMEOUT error after `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what = 'KMS call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'E_TIMEOUT' })),
      ms
    )
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Maps with at most `limit` calls in flight; results in input order. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>) {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** Progress of a run, derived from its row. */
export interface RunProgress {
  /** Rows handled (rewrapped + skipped + failed). */
  done: number
  total: number
  /** 0–100, one decimal. */
  percent: number
  /** done / (heartbeat − start), rows per second. */
  rowsPerSecond: number
  /** Seconds left at that rate; null while unknown. */
  etaSeconds: number | null
}

/** A run as the API shows it. */
export interface RotationRunView {
  id: string
  kekName: string
  status: RotationRun['status']
  trigger: RotationRun['trigger']
  requestedBy: string | null
  rotateKek: boolean
  baseVersion: number
  targetVersion: number | null
  totalRows: number
  rewrapped: number
  skipped: number
  failed: number
  pass: number
  cancelRequested: boolean
  /**
   * Who stopped a `cancelled` run: `operator` (stays paused until resumed)
   * or `shutdown` (the scheduler resumes it); null otherwise.
   */
  cancelledBy: CancelledBy | null
  /**
   * True for a `running` run that no live process is working on (its
   * process died: nobody holds the KEK's rotation lock). Resume it.
   */
  stalled: boolean
  lastError: string | null
  options: {
    batchSize: number | null
    sleepMs: number | null
    maxRate: number | null
    niceRatio: number | null
  }
  startedAt: string
  heartbeatAt: string
  finishedAt: string | null
  progress: RunProgress
}

/** One version of a KEK in the status report. */
export interface KekVersionStatus {
  version: number
  /**
   * `active` (decryptable), `retired` (< min_decryption_version), `trimmed`
   * (deleted), `unknown` (the KMS does not know the KEK or could not be asked).
   */
  state: 'active' | 'retired' | 'trimmed' | 'unknown'
  /** From the KMS; null when the KMS does not report it (retired, trimmed). */
  createdAt: string | null
  ageSeconds: number | null
  rows: number
}

/** One KEK in the status report. */
export interface KekStatus {
  name: string
  /** False when rows name a KEK the KMS does not know; null when the KMS could not be asked. */
  exists: boolean | null
  /** `CODE: message` when the KMS read failed (versions then come from rows only). */
  kmsError: string | null
  /** The KMS driver holding the KEK. */
  driver: string
  latestVersion: number | null
  minDecryptionVersion: number | null
  minAvailableVersion: number | null
  versions: KekVersionStatus[]
  rows: number
  /** Rows below the latest version (to rewrap). */
  staleRows: number
  cryptoperiodDays: number
  /** Latest version's creation + cryptoperiod. */
  nextRotationDueAt: string | null
  /** True when nextRotationDueAt has passed. */
  rotationDue: boolean
  running: RotationRunView | null
  /** The newest run that is not running (completed, with errors, failed or cancelled). */
  lastRun: RotationRunView | null
  /** finished_at of the newest `completed` run. */
  lastSuccessAt: string | null
}

/** GET /rotations/status. */
export interface RotationStatusReport {
  generatedAt: string
  /** When the row counts were taken (cached up to `countsMaxAgeSeconds`). */
  countsAsOf: string
  countsMaxAgeSeconds: number
  keks: KekStatus[]
}

/** A driver that can list its KEK names (optional capability). */
interface ListingDriver extends KmsDriver {
  listKeys(): Promise<string[]>
}

function canList(driver: KmsDriver): driver is ListingDriver {
  return typeof (driver as Partial<ListingDriver>).listKeys === 'function'
}

function iso(value: Date | string | null | undefined): string | null {
  if (value === null || value === undefined) return null
  return new Date(value).toISOString()
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

/**
 * Shapes a run row for the API, with its progress (rate from the run's
 * own start and last heartbeat: over a resumed run it averages pauses in).
 * `live`: whether a process holds the run's lock (false marks a `running`
 * run as stalled).
 */
export function runView(run: RotationRun, live = true): RotationRunView {
  const done = run.rewrapped + run.skipped + run.failed
  const total = Math.max(run.totalRows, done)
  const started = new Date(run.startedAt).getTime()
  const heartbeat = new Date(run.heartbeatAt).getTime()
  const seconds = (heartbeat - started) / 1000
  const rate = seconds > 0 && done > 0 ? done / seconds : 0
  const left = total - done
  // A run that just started has not counted its rows yet (Step A first).
  const counting = run.status === 'running' && run.totalRows === 0
  return {
    id: run.id,
    kekName: run.kekName,
    status: run.status,
    trigger: run.trigger,
    requestedBy: run.requestedBy,
    rotateKek: run.rotateKek,
    baseVersion: run.baseVersion,
    targetVersion: run.targetVersion,
    totalRows: run.totalRows,
    rewrapped: run.rewrapped,
    skipped: run.skipped,
    failed: run.failed,
    pass: run.pass,
    cancelRequested: run.cancelRequested,
    cancelledBy: run.cancelledBy,
    stalled: run.status === 'running' && !live,
    lastError: run.lastError,
    options: {
      batchSize: numberOrNull(run.options.batchSize),
      sleepMs: numberOrNull(run.options.sleepMs),
      maxRate: numberOrNull(run.options.maxRate),
      niceRatio: numberOrNull(run.options.niceRatio),
    },
    startedAt: iso(run.startedAt)!,
    heartbeatAt: iso(run.heartbeatAt)!,
    finishedAt: iso(run.finishedAt),
    progress: {
      done,
      total,
      percent: total > 0 ? Math.floor((done / total) * 1000) / 10 : counting ? 0 : 100,
      rowsPerSecond: Math.round(rate * 10) / 10,
      etaSeconds: counting ? null : left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
    },
  }
}

/**
 * Status, list, detail, start and cancel of rotations for the HTTP API.
 */
@inject()
export class RotationStatusService {
  /** Run persistence (swappable in tests). */
  store = new RotationStore()

  constructor(
    private kms: KmsManager,
    private rotations: KeyRotationService,
    private clock: Clock
  ) {}

  /**
   * Per KEK (known to the KMS or named by rows; one when `kekName` is
   * given): versions, ages, counts, due date, running and last runs.
   */
  async status(kekName?: string): Promise<RotationStatusReport> {
    const now = this.clock.now()
    const { counts, asOf } = await entryCounts.get(now)
    const names = kekName ? [kekName] : await this.#kekNames(counts)
    const runs = await this.#runsByKek(kekName)
    const held = await RotationLock.heldKeys(
      [...runs].filter(([, r]) => r.running).map(([name]) => name)
    )
    const infos = await mapLimited(names, KMS_CONCURRENCY, (name) => this.#readKey(name))
    const keks: KekStatus[] = []
    names.forEach((name, index) => {
      const { info, error } = infos[index]
      const perVersion = counts.get(name) ?? new Map<number, number>()
      if (kekName && !info && !error && perVersion.size === 0 && !runs.has(name)) return
      const status = this.#kekStatus(
        name,
        this.#driverName(name),
        info,
        perVersion,
        runs.get(name),
        held.has(name),
        now
      )
      keks.push({ ...status, exists: error ? null : status.exists, kmsError: error })
    })
    return {
      generatedAt: now.toISOString(),
      countsAsOf: asOf.toISOString(),
      countsMaxAgeSeconds: COUNTS_TTL_MS / 1000,
      keks,
    }
  }

  /**
   * Runs, newest first.
   */
  async list(options: { kek?: string; limit?: number } = {}): Promise<RotationRunView[]> {
    const runs = await this.store.list({ kekName: options.kek, limit: options.limit ?? 50 })
    return this.#views(runs)
  }

  /**
   * One run; E_ROTATION_NOT_FOUND when unknown.
   */
  async show(id: string): Promise<RotationRunView> {
    const run = await this.store.find(id)
    if (!run) throw new E_ROTATION_NOT_FOUND([id])
    const [view] = await this.#views([run])
    return view
  }

  /**
   * Starts a run in the background (trigger `api`); resolves once its row
   * exists. Rejects with E_ROTATION_IN_PROGRESS, E_ROTATION_UNFINISHED,
   * E_NO_ROTATION_TO_RESUME, E_KEK_NOT_FOUND or E_ROTATION_INVALID.
   */
  async start(input: StartRotationInput, requestedBy: string | null): Promise<RotationRunView> {
    const { kek, ...options } = input
    const run = await this.rotations.start(kek, { ...options, trigger: 'api', requestedBy })
    return runView(run)
  }

  /**
   * Asks a running run to stop after its current batch (no effect on a
   * finished run); E_ROTATION_NOT_FOUND when unknown.
   */
  async cancel(id: string): Promise<RotationRunView> {
    const [view] = await this.#views([await this.rotations.cancel(id)])
    return view
  }

  /** Views of runs, `running` ones checked against the live rotation locks. */
  async #views(runs: RotationRun[]): Promise<RotationRunView[]> {
    const running = runs.filter((run) => run.status === 'running').map((run) => run.kekName)
    const held = await RotationLock.heldKeys([...new Set(running)])
    return runs.map((run) => runView(run, held.has(run.kekName)))
  }

  /** The KMS's view of a KEK, or the (secret-free) reason it could not be read. */
  async #readKey(name: string): Promise<{ info: KekInfo | null; error: string | null }> {
    try {
      const driver = await this.kms.use(this.#driverName(name))
      return { info: await withTimeout(driver.readKey(name), KMS_TIMEOUT_MS), error: null }
    } catch (error) {
      return { info: null, error: describeFailure(error) }
    }
  }

  /** The driver name holding a KEK. */
  #driverName(name: string): string {
    return String(this.kms.config.keks?.[name] ?? this.kms.config.default)
  }

  /** KEK names from the KMS (drivers that can list) and from rows, sorted. */
  async #kekNames(counts: Map<string, Map<number, number>>): Promise<string[]> {
    const names = new Set(counts.keys())
    const drivers = new Set<string>([
      String(this.kms.config.default),
      ...Object.values(this.kms.config.keks ?? {}).map(String),
    ])
    for (const driverName of drivers) {
      try {
        const driver = await this.kms.use(driverName)
        if (!canList(driver)) continue
        for (const name of await withTimeout(driver.listKeys(), KMS_TIMEOUT_MS)) {
          if (this.#driverName(name) === driverName) names.add(name)
        }
      } catch {
        // The KMS is down: the KEKs named by rows and runs are still reported.
      }
    }
    for (const name of this.#managedKeks()) names.add(name)
    return [...names].sort()
  }

  /** Running run, newest other run and last success time, per KEK. */
  async #runsByKek(kekName?: string) {
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
    const out = new Map<
      string,
      { running: RotationRun | null; last: RotationRun | null; lastSuccessAt: Date | null }
    >()
    for (const row of rows as Array<Record<string, any>>) {
      out.set(row.kek_name, {
        running: row.running_id ? await this.store.find(String(row.running_id)) : null,
        last: row.last_id ? await this.store.find(String(row.last_id)) : null,
        lastSuccessAt: row.last_success_at ?? null,
      })
    }
    return out
  }

  #kekStatus(
    name: string,
    driverName: string,
    info: KekInfo | null,
    perVersion: Map<number, number>,
    runs:
      | { running: RotationRun | null; last: RotationRun | null; lastSuccessAt: Date | null }
      | undefined,
    live: boolean,
    now: Date
  ): KekStatus {
    const created = new Map((info?.versions ?? []).map((v) => [v.version, v.createdAt]))
    const numbers = new Set<number>(perVersion.keys())
    for (let v = 1; v <= (info?.latestVersion ?? 0); v++) numbers.add(v)
    const versions = [...numbers]
      .sort((a, b) => a - b)
      .map((version): KekVersionStatus => {
        const at = created.get(version)
        let state: KekVersionStatus['state'] = 'active'
        if (!info) state = 'unknown'
        else if (version < info.minAvailableVersion) state = 'trimmed'
        else if (version < info.minDecryptionVersion) state = 'retired'
        return {
          version,
          state,
          createdAt: iso(at),
          ageSeconds: at ? Math.max(0, Math.floor((now.getTime() - at.getTime()) / 1000)) : null,
          rows: perVersion.get(version) ?? 0,
        }
      })
    const rows = versions.reduce((sum, v) => sum + v.rows, 0)
    const latest = info?.latestVersion ?? null
    const staleRows =
      latest === null
        ? rows
        : versions.filter((v) => v.version < latest).reduce((s, v) => s + v.rows, 0)
    const cryptoperiodDays = this.#cryptoperiodDays(name)
    const latestCreated = latest === null ? undefined : created.get(latest)
    const due = latestCreated
      ? new Date(latestCreated.getTime() + cryptoperiodDays * 86_400_000)
      : null
    return {
      name,
      exists: !!info,
      kmsError: null,
      driver: driverName,
      latestVersion: latest,
      minDecryptionVersion: info?.minDecryptionVersion ?? null,
      minAvailableVersion: info?.minAvailableVersion ?? null,
      versions,
      rows,
      staleRows,
      cryptoperiodDays,
      nextRotationDueAt: iso(due),
      rotationDue: due !== null && due.getTime() <= now.getTime(),
      running: runs?.running ? runView(runs.running, live) : null,
      lastRun: runs?.last ? runView(runs.last) : null,
      lastSuccessAt: iso(runs?.lastSuccessAt),
    }
  }

  /**
   * The KEK's cryptoperiod in days: config/rewrap.ts `lifecycle` (per-KEK
   * entry, then its default) when that section exists, else 90 days.
   */
  #cryptoperiodDays(name: string): number {
    const lifecycle = this.#lifecycle()
    if (!lifecycle) return DEFAULT_CRYPTOPERIOD_DAYS
    const perKek = this.#managedEntry(lifecycle, name)
    return (
      daysOf(perKek) ?? daysOf(lifecycle.defaults) ?? daysOf(lifecycle) ?? DEFAULT_CRYPTOPERIOD_DAYS
    )
  }

  /** Names of the KEKs listed as managed in config/rewrap.ts `lifecycle`, if any. */
  #managedKeks(): string[] {
    const keks = this.#lifecycle()?.keks
    if (Array.isArray(keks)) {
      return keks
        .map((k) => (typeof k === 'string' ? k : (k as { name?: unknown })?.name))
        .filter((k): k is string => typeof k === 'string')
    }
    return keks && typeof keks === 'object' ? Object.keys(keks) : []
  }

  #lifecycle(): Record<string, any> | null {
    const section = app.config.get<unknown>('rewrap.lifecycle', null)
    return section && typeof section === 'object' ? (section as Record<string, any>) : null
  }

  #managedEntry(lifecycle: Record<string, any>, name: string): unknown {
    const keks = lifecycle.keks
    if (Array.isArray(keks)) return keks.find((k) => k?.name === name)
    return keks && typeof keks === 'object' ? keks[name] : undefined
  }
}

/** `cryptoperiodDays`, or `cryptoperiodMs` / `cryptoperiodSeconds` in days. */
function daysOf(section: unknown): number | undefined {
  if (!section || typeof section !== 'object') return undefined
  const s = section as Record<string, unknown>
  if (typeof s.cryptoperiodDays === 'number') return s.cryptoperiodDays
  if (typeof s.cryptoperiodMs === 'number') return s.cryptoperiodMs / 86_400_000
  if (typeof s.cryptoperiodSeconds === 'number') return s.cryptoperiodSeconds / 86_400
  return undefined
}
