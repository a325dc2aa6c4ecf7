/*
|--------------------------------------------------------------------------
| Re-encrypt run transformer
|--------------------------------------------------------------------------
|
| The API shape of a re-encrypt run (GET /reencrypts, /reencrypts/:id,
| POST /reencrypts/:id/cancel): the same fields and meanings as a
| rotation run's where the two kinds share them.
|
*/
import type { ReencryptRun } from '#services/reencrypt_store'
import type { CancelledBy } from '#services/run_engine'
import {
  iso,
  numberOrNull,
  RunTransformer,
  type RunViewProgress,
} from '#transformers/run_transformer'

/** A re-encrypt run as the API shows it. */
export interface ReencryptRunView {
  id: string
  fromKek: string
  toKek: string
  status: ReencryptRun['status']
  totalRows: number
  reencrypted: number
  skipped: number
  failed: number
  pass: number
  cancelRequested: boolean
  /** `operator` (Ctrl-C, POST /reencrypts/:id/cancel) or `shutdown` (SIGTERM); null otherwise. */
  cancelledBy: CancelledBy | null
  /**
   * True for a `running` run that no live process is working on (its
   * process died: nobody holds the source KEK's re-encrypt lock); its
   * `heartbeatAt` says since when. Rerun the same `reencrypt` to resume it.
   */
  stalled: boolean
  lastError: string | null
  options: { batchSize: number | null; sleepMs: number | null; niceRatio: number | null }
  startedAt: string
  heartbeatAt: string
  finishedAt: string | null
  progress: RunViewProgress
}

/**
 * Shapes re-encrypt runs for the API.
 */
export class ReencryptRunTransformer {
  /** A run as the API shows it; `live`: whether a process holds its lock. */
  static transform(run: ReencryptRun, live = true): ReencryptRunView {
    return {
      id: run.id,
      fromKek: run.fromKek,
      toKek: run.toKek,
      status: run.status,
      totalRows: run.totalRows,
      reencrypted: run.reencrypted,
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
        niceRatio: numberOrNull(run.options.niceRatio),
      },
      startedAt: iso(run.startedAt)!,
      heartbeatAt: iso(run.heartbeatAt)!,
      finishedAt: iso(run.finishedAt),
      progress: RunTransformer.progressOf(run, run.reencrypted + run.skipped + run.failed),
    }
  }

  /** Runs as the API shows them; `liveSources`: source KEKs whose re-encrypt lock is held. */
  static transformMany(runs: ReencryptRun[], liveSources: Set<string>): ReencryptRunView[] {
    return runs.map((run) => ReencryptRunTransformer.transform(run, liveSources.has(run.fromKek)))
  }
}
