/*
|--------------------------------------------------------------------------
| Run view
|--------------------------------------------------------------------------
|
| The API shape every run kind shares (status, counters, cancel fields,
| timestamps, progress, pacing), used by the rotation and re-encrypt transformers:
| each passes only its own fields, which `runView` puts at their places,
| so a kind's JSON keeps its keys in the order it always had.
|
*/
import type { RunProgress } from '#services/run_progress'
import type { CancelledBy } from '#services/run_engine'
import type { RunRowFields } from '#services/run_row_store'
import type { RunPacingView } from '#services/run_pacing'

/**
 * A run's progress as the API shows it: the fields of {@link RunProgress}
 * (without the run) over the whole run, plus a percentage.
 */
export type RunViewProgress = Omit<RunProgress<unknown>, 'run'> & {
  /** 0–100, one decimal. */
  percent: number
}

/** The fields every run kind shows. */
export interface RunViewCommon {
  id: string
  status: RunRowFields['status']
  totalRows: number
  skipped: number
  failed: number
  pass: number
  cancelRequested: boolean
  /**
   * Who stopped a `cancelled` run: `operator` (Ctrl-C, a cancel request;
   * stays paused until resumed) or `shutdown` (SIGTERM; the scheduler
   * resumes a rotation); null otherwise.
   */
  cancelledBy: CancelledBy | null
  /**
   * True for a `running` run that no live process is working on (its
   * process died: nobody holds its lock, the KEK's rotation lock or the
   * source KEK's re-encrypt lock); `heartbeatAt` says since when. Resume
   * it (a rotation's resume, the same `reencrypt` again).
   */
  stalled: boolean
  lastError: string | null
  startedAt: string
  heartbeatAt: string
  finishedAt: string | null
  /**
   * Rows handled (moved + skipped + failed) of the total; the rate is
   * done / (heartbeat − start), so over a resumed run it averages pauses
   * in; `etaSeconds` null while unknown.
   */
  progress: RunViewProgress
  /**
   * Why a `running` run goes at its speed: its last pacing judgement (the
   * latency budget's duty, foreground and baseline p99). Null when it has
   * none (full speed, a fixed nice ratio, not judged yet) and for any run
   * that is not running.
   */
  pacing: RunPacingView | null
}

/** An ISO 8601 string, null for no date. */
export function iso(value: Date | string | null | undefined): string | null {
  if (value === null || value === undefined) return null
  return new Date(value).toISOString()
}

/** A number option of a run's `options` JSON, or null. */
export function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

/** Progress of any run kind with `done` rows done (moved, skipped, failed). */
export function progressOf(
  run: Pick<RunRowFields, 'status' | 'totalRows' | 'startedAt' | 'heartbeatAt'>,
  done: number
): RunViewProgress {
  const total = Math.max(run.totalRows, done)
  const seconds = (new Date(run.heartbeatAt).getTime() - new Date(run.startedAt).getTime()) / 1000
  const rate = seconds > 0 && done > 0 ? done / seconds : 0
  const left = total - done
  // A run that just started has not counted its rows yet (the KEK is rotated first).
  const counting = run.status === 'running' && run.totalRows === 0
  return {
    done,
    total,
    percent: total > 0 ? Math.floor((done / total) * 1000) / 10 : counting ? 0 : 100,
    rowsPerSecond: Math.round(rate * 10) / 10,
    etaSeconds: counting ? null : left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
  }
}

/** A kind's own fields, each group at its place in the view. */
export interface RunViewParts<Names, About, Moved, Extra, Option extends string> {
  /** Whether a process holds the run's lock (false marks a `running` run as stalled). */
  live: boolean
  /** Rows done in all (moved + skipped + failed). */
  done: number
  /** After `id`: the KEKs the run is of. */
  names: Names
  /** After `status`. */
  about: About
  /** After `totalRows`: the moved-rows counter. */
  moved: Moved
  /** After `lastError`. */
  extra: Extra
  /** The number options shown (each null when unset), in order. */
  options: readonly Option[]
  /** The run's row of `run_pacing` (shown only while it runs); null or absent: none. */
  pacing?: RunPacingView | null
}

/** A run as the API shows it: the common fields with the kind's own (`parts`) at their places. */
export function runView<Names, About, Moved, Extra, Option extends string>(
  run: RunRowFields,
  parts: RunViewParts<Names, About, Moved, Extra, Option>
) {
  return {
    id: run.id,
    ...parts.names,
    status: run.status,
    ...parts.about,
    totalRows: run.totalRows,
    ...parts.moved,
    skipped: run.skipped,
    failed: run.failed,
    pass: run.pass,
    cancelRequested: run.cancelRequested,
    cancelledBy: run.cancelledBy,
    stalled: run.status === 'running' && !parts.live,
    lastError: run.lastError,
    ...parts.extra,
    options: Object.fromEntries(
      parts.options.map((name) => [name, numberOrNull(run.options[name])])
    ) as Record<Option, number | null>,
    startedAt: iso(run.startedAt)!,
    heartbeatAt: iso(run.heartbeatAt)!,
    finishedAt: iso(run.finishedAt),
    progress: progressOf(run, parts.done),
    pacing: run.status === 'running' ? (parts.pacing ?? null) : null,
  }
}
