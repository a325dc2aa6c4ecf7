/*
|--------------------------------------------------------------------------
| Console transformer
|--------------------------------------------------------------------------
|
| Shapes what the services report into what the console's templates show:
| a KEK's due state and version bars, a run's (rotation or re-encrypt)
| outcome and pacing, an audit record's line. Pure functions (no I/O,
| time passed in).
|
*/
import type { KekStatus } from '#services/rotation_status_service'
import type { ReencryptRunView } from '#transformers/reencrypt_run_transformer'
import type { RotationRunView } from '#transformers/run_transformer'
import type { RunViewCommon } from '#transformers/run_view'
import type { StoredAuditRecord } from '#services/audit_service'

const DAY_MS = 86_400_000

/** A KEK is "due" this many days before its rotation date (or sooner for short periods). */
export const DUE_SOON_DAYS = 30

/** Where a KEK stands against its cryptoperiod. */
export type DueState = 'ok' | 'due' | 'overdue' | 'unknown'

/** One bar of a KEK's rows-per-version chart. */
export interface VersionBar {
  version: number
  state: string
  rows: number
  /** Bar length, 0–100 (of the KEK's largest version). */
  percent: number
  latest: boolean
}

/** A KEK row of the KEKs panel. */
export interface ConsoleKek {
  name: string
  driver: string
  latestVersion: number | null
  /** Age of the latest version in whole days (null: unknown). */
  ageDays: number | null
  cryptoperiodDays: number
  dueAt: string | null
  /** Days until due (negative: overdue by). */
  daysLeft: number | null
  due: DueState
  retired: number[]
  trimmed: number[]
  rows: number
  staleRows: number
  bars: VersionBar[]
  kmsError: string | null
}

/** What a run of either kind (rotation, re-encrypt) shows: its outcome, progress and pacing. */
export interface ConsoleRunCommon {
  id: string
  status: string
  /** One word for the outcome column (running, stalled, completed …). */
  outcome: string
  percent: number
  done: number
  total: number
  rowsPerSecond: number
  etaSeconds: number | null
  /**
   * `paced` when a sleep, rate cap or nice ratio slows it, else `full speed`;
   * `paced · duty 37 %` while the latency budget holds a running run to a duty.
   */
  pacing: string
  /** A running run's duty under its latency budget (0–1, its last judgement), else null. */
  duty: number | null
  /** Rows it could not handle (left in place). */
  failed: number
  lastError: string | null
  cancelRequested: boolean
  startedAt: string
  finishedAt: string | null
}

/** A rotation run as the Runs panel shows it. */
export interface ConsoleRun extends ConsoleRunCommon {
  kekName: string
  trigger: string
  requestedBy: string | null
}

/** A re-encrypt run as the Re-encrypts panel shows it: moving rows from one KEK to another. */
export interface ConsoleReencrypt extends ConsoleRunCommon {
  fromKek: string
  toKek: string
}

/** A line of the Audit panel. */
export interface ConsoleAuditLine {
  seq: number
  said: string
  dt: string
  act: string
  actor: string
  outcome: string
  kek: string | null
}

/** A KEK status row shaped for the KEKs panel, due state as of `now`. */
export function consoleKek(kek: KekStatus, now: Date): ConsoleKek {
  const latest = kek.versions.find((v) => v.version === kek.latestVersion)
  const dueMs = kek.nextRotationDueAt ? Date.parse(kek.nextRotationDueAt) : null
  const daysLeft = dueMs === null ? null : Math.floor((dueMs - now.getTime()) / DAY_MS)
  const soon = Math.min(DUE_SOON_DAYS, kek.cryptoperiodDays / 4)
  let due: DueState = 'unknown'
  if (dueMs !== null) {
    due = dueMs <= now.getTime() ? 'overdue' : daysLeft! < soon ? 'due' : 'ok'
  }
  const max = Math.max(1, ...kek.versions.map((v) => v.rows))
  return {
    name: kek.name,
    driver: kek.driver,
    latestVersion: kek.latestVersion,
    ageDays: latest?.ageSeconds === null || !latest ? null : Math.floor(latest.ageSeconds / 86_400),
    cryptoperiodDays: Math.round(kek.cryptoperiodDays * 100) / 100,
    dueAt: kek.nextRotationDueAt,
    daysLeft,
    due,
    retired: kek.versions.filter((v) => v.state === 'retired').map((v) => v.version),
    trimmed: kek.versions.filter((v) => v.state === 'trimmed').map((v) => v.version),
    rows: kek.rows,
    staleRows: kek.staleRows,
    bars: kek.versions.map((v) => ({
      version: v.version,
      state: v.state,
      rows: v.rows,
      percent: Math.round((v.rows / max) * 1000) / 10,
      latest: v.version === kek.latestVersion,
    })),
    kmsError: kek.kmsError,
  }
}

/** The pacing options a run view may show (a re-encrypt run has no rate cap). */
type PacingOptions = { sleepMs?: number | null; maxRate?: number | null; niceRatio?: number | null }

/** The fields of a run view of either kind that the console shows. */
function consoleRunCommon(run: RunViewCommon & { options: PacingOptions }): ConsoleRunCommon {
  const { sleepMs, maxRate, niceRatio } = run.options
  const paced = (sleepMs ?? 0) > 0 || (maxRate ?? 0) > 0 || (niceRatio ?? 0) > 0
  const duty = run.pacing?.duty ?? null
  return {
    id: run.id,
    status: run.status,
    outcome: run.stalled ? 'stalled' : run.status.replaceAll('_', ' '),
    percent: run.progress.percent,
    done: run.progress.done,
    total: run.progress.total,
    rowsPerSecond: run.progress.rowsPerSecond,
    etaSeconds: run.progress.etaSeconds,
    pacing:
      duty !== null ? `paced · duty ${Math.round(duty * 100)} %` : paced ? 'paced' : 'full speed',
    duty,
    failed: run.failed,
    lastError: run.lastError,
    cancelRequested: run.cancelRequested,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
  }
}

/** A rotation run shaped for the Runs panel. */
export function consoleRun(run: RotationRunView): ConsoleRun {
  return {
    ...consoleRunCommon(run),
    kekName: run.kekName,
    trigger: run.trigger,
    requestedBy: run.requestedBy,
  }
}

/** A re-encrypt run shaped for the Re-encrypts panel. */
export function consoleReencrypt(run: ReencryptRunView): ConsoleReencrypt {
  return { ...consoleRunCommon(run), fromKek: run.fromKek, toKek: run.toKek }
}

/** An audit record's line: what, who, when (never its data or signatures). */
export function consoleAuditLine(stored: StoredAuditRecord): ConsoleAuditLine {
  const a = stored.record.a
  const kek = (a.data as Record<string, unknown> | undefined)?.kek
  return {
    seq: stored.seq,
    said: stored.record.d,
    dt: a.dt,
    act: a.act,
    actor: a.actor,
    outcome: a.outcome,
    kek: typeof kek === 'string' ? kek : null,
  }
}

/** `1h 02m`, `45s`, `3d 4h`: a duration in seconds for people. */
export function humanSeconds(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—'
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`
  if (s < 86_400)
    return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`
}
