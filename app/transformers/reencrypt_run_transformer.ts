/*
|--------------------------------------------------------------------------
| Re-encrypt run transformer
|--------------------------------------------------------------------------
|
| The API shape of a re-encrypt run (GET /reencrypts, /reencrypts/:id,
| POST /reencrypts/:id/cancel): the fields every run kind shares are
| run_view's (the same meanings as a rotation run's), plus its own.
|
*/
import type { ReencryptRun } from '#services/reencrypt_store'
import type { RunPacingView } from '#services/run_pacing'
import { runView, type RunViewCommon } from '#transformers/run_view'

/** A re-encrypt run as the API shows it. */
export interface ReencryptRunView extends RunViewCommon {
  fromKek: string
  toKek: string
  reencrypted: number
  options: { batchSize: number | null; sleepMs: number | null; niceRatio: number | null }
}

/** The options a re-encrypt run shows. */
const OPTIONS = ['batchSize', 'sleepMs', 'niceRatio'] as const

/**
 * Shapes re-encrypt runs for the API.
 */
export class ReencryptRunTransformer {
  /**
   * A run as the API shows it; `live`: whether a process holds its lock;
   * `pacing`: its row of `run_pacing`, if any.
   */
  static transform(
    run: ReencryptRun,
    live = true,
    pacing: RunPacingView | null = null
  ): ReencryptRunView {
    return runView(run, {
      live,
      done: run.reencrypted + run.skipped + run.failed,
      names: { fromKek: run.fromKek, toKek: run.toKek },
      about: {},
      moved: { reencrypted: run.reencrypted },
      extra: {},
      options: OPTIONS,
      pacing,
    })
  }

  /**
   * Runs as the API shows them; `liveSources`: source KEKs whose re-encrypt
   * lock is held; `pacing` by run id.
   */
  static transformMany(
    runs: ReencryptRun[],
    liveSources: Set<string>,
    pacing: Map<string, RunPacingView> = new Map()
  ): ReencryptRunView[] {
    return runs.map((run) =>
      ReencryptRunTransformer.transform(
        run,
        liveSources.has(run.fromKek),
        pacing.get(run.id) ?? null
      )
    )
  }
}
