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
| The fields every run kind shares are run_view's.
|
*/
import type { ChunkStats } from '#services/chunk_store'
import type { RotationRun } from '#services/rotation_store'
import type { RunPacingView } from '#services/run_pacing'
import {
  iso,
  numberOrNull,
  progressOf,
  runView,
  type RunViewCommon,
  type RunViewProgress,
} from '#transformers/run_view'

export { iso, numberOrNull }
export type { RunViewProgress }

/** A run as the API shows it. */
export interface RotationRunView extends RunViewCommon {
  kekName: string
  status: RotationRun['status']
  trigger: RotationRun['trigger']
  requestedBy: string | null
  rotateKek: boolean
  baseVersion: number
  targetVersion: number | null
  rewrapped: number
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
}

/** The options a rotation run shows. */
const OPTIONS = ['batchSize', 'sleepMs', 'maxRate', 'niceRatio'] as const

/**
 * Shapes rotation runs for the API.
 */
export class RunTransformer {
  /**
   * A run row as the API shows it, with its progress. `live`: whether a
   * process holds the run's lock (false marks a `running` run as stalled);
   * `pacing`: its row of `run_pacing`, if any.
   */
  static transform(
    run: RotationRun,
    live = true,
    chunks: ChunkStats | null = null,
    pacing: RunPacingView | null = null
  ): RotationRunView {
    const distributed = run.options.distributed === true
    return runView(run, {
      live,
      done: run.rewrapped + run.skipped + run.failed,
      names: { kekName: run.kekName },
      about: {
        trigger: run.trigger,
        requestedBy: run.requestedBy,
        rotateKek: run.rotateKek,
        baseVersion: run.baseVersion,
        targetVersion: run.targetVersion,
      },
      moved: { rewrapped: run.rewrapped },
      extra: {
        distributed,
        chunks: distributed
          ? (chunks ?? { pending: 0, running: 0, done: 0, stalled: 0, workers: [] })
          : null,
      },
      options: OPTIONS,
      pacing,
    })
  }

  /**
   * Runs as the API shows them; `liveKeks`: KEKs whose rotation lock a
   * process holds; `chunks` and `pacing` by run id.
   */
  static transformMany(
    runs: RotationRun[],
    liveKeks: Set<string>,
    chunks: Map<string, ChunkStats> = new Map(),
    pacing: Map<string, RunPacingView> = new Map()
  ): RotationRunView[] {
    return runs.map((run) =>
      RunTransformer.transform(
        run,
        liveKeks.has(run.kekName),
        chunks.get(run.id) ?? null,
        pacing.get(run.id) ?? null
      )
    )
  }

  /** Progress from the run's own start and last heartbeat. */
  static progress(run: RotationRun): RunViewProgress {
    return progressOf(run, run.rewrapped + run.skipped + run.failed)
  }

  /** Progress of any run kind with `done` rows done (moved, skipped, failed). */
  static progressOf(run: Parameters<typeof progressOf>[0], done: number): RunViewProgress {
    return progressOf(run, done)
  }
}
