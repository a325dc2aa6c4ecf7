/*
|--------------------------------------------------------------------------
| Run transformer
|--------------------------------------------------------------------------
|
| The API shape of a rotation run (GET/POST /rotations, the status report,
| /metrics), as the starter kits' transformers shape models: one place
| that decides what a run row shows. A plain, pure function rather than a
| BaseTransformer subclass: the same object is embedded in the status
| report and read by the metrics service, not only serialized by a route.
|
*/
import type { RunProgress } from '#services/run_progress'
import type { ChunkStats } from '#services/chunk_store'
import type { CancelledBy, RotationRun } from '#services/rotation_store'

/**
 * A run's progress as the API shows it: the fields of {@link RunProgress}
 * (without the run) over the whole run, plus a percentage.
 */
export type RunViewProgress = Omit<RunProgress<RotationRun>, 'run'> & {
  /** 0–100, one decimal. */
  percent: number
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
  /** Cut into chunks worked by `rewrap:worker` processes (rotate:kek --workers / --distributed). */
  distributed: boolean
  /**
   * A distributed run's chunks: counts by status, `stalled` (running, lease
   * expired: the worker stopped committing; another worker takes it over),
   * and per worker the chunks it holds or finished and their rows. Null for
   * a one-process run.
   */
  chunks: ChunkStats | null
  options: {
    batchSize: number | null
    sleepMs: number | null
    maxRate: number | null
    niceRatio: number | null
  }
  startedAt: string
  heartbeatAt: string
  finishedAt: string | null
  /**
   * Rows handled (rewrapped + skipped + failed) of the total; the rate is
   * done / (heartbeat − start), so over a resumed run it averages pauses
   * in; `etaSeconds` null while unknown.
   */
  progress: RunViewProgress
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

/**
 * Shapes rotation runs for the API.
 */
export class RunTransformer {
  /**
   * A run row as the API shows it, with its progress. `live`: whether a
   * process holds the run's lock (false marks a `running` run as stalled).
   */
  static transform(
    run: RotationRun,
    live = true,
    chunks: ChunkStats | null = null
  ): RotationRunView {
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
      distributed: run.options.distributed === true,
      chunks:
        run.options.distributed === true
          ? (chunks ?? { pending: 0, running: 0, done: 0, stalled: 0, workers: [] })
          : null,
      options: {
        batchSize: numberOrNull(run.options.batchSize),
        sleepMs: numberOrNull(run.options.sleepMs),
        maxRate: numberOrNull(run.options.maxRate),
        niceRatio: numberOrNull(run.options.niceRatio),
      },
      startedAt: iso(run.startedAt)!,
      heartbeatAt: iso(run.heartbeatAt)!,
      finishedAt: iso(run.finishedAt),
      progress: RunTransformer.progress(run),
    }
  }

  /**
   * Runs as the API shows them; `liveKeks`: KEKs whose rotation lock a
   * process holds.
   */
  static transformMany(
    runs: RotationRun[],
    liveKeks: Set<string>,
    chunks: Map<string, ChunkStats> = new Map()
  ): RotationRunView[] {
    return runs.map((run) =>
      RunTransformer.transform(run, liveKeks.has(run.kekName), chunks.get(run.id) ?? null)
    )
  }

  /** Progress from the run's own start and last heartbeat. */
  static progress(run: RotationRun): RunViewProgress {
    return RunTransformer.progressOf(run, run.rewrapped + run.skipped + run.failed)
  }

  /** Progress of any run kind with `done` rows done (moved, skipped, failed). */
  static progressOf(
    run: Pick<RotationRun, 'status' | 'totalRows' | 'startedAt' | 'heartbeatAt'>,
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
}
