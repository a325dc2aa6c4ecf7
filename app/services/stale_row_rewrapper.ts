/*
|--------------------------------------------------------------------------
| Stale row rewrapper
|--------------------------------------------------------------------------
|
| The rewrap half of a rotation run (the design's Step B) as a run kind of
| the run engine (app/services/run_engine.ts): the batch source is the
| rotation store's keyset scan per stale version, "prepare a batch" is one
| KMS rewrap call to the run's target version, "commit a batch" the
| store's fenced compare-and-swap UPDATE. The engine does the passes, the
| pacing, the pipelining, cancel, the lock and KMS-outage checks. Only
| rewrap is ever asked of the KMS: no DEK is unwrapped, no payload
| decrypted.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import type { RewrapConfig } from '#config/rewrap'
import { KmsManager } from '#kms/kms_manager'
import type { HeldLock } from '#services/advisory_lock'
import { Clock } from '#services/clock'
import { ForegroundDetector } from '#services/foreground_detector'
import { resolvePacing } from '#services/pacing_options'
import { RunEngine, type EngineHooks, type EnginePacing, type RunKind } from '#services/run_engine'
import type { RunProgress } from '#services/run_progress'
import {
  RotationStore,
  type RewrapResults,
  type RotationRun,
  type StaleRow,
} from '#services/rotation_store'

/** Progress of a running rotation. */
export type RotationProgress = RunProgress<RotationRun>

/** Pacing, progress and stop signal of a rewrap (a rotation's own options). */
export interface RewrapOptions extends EngineHooks<RotationRun> {
  sleepMs?: number
  maxRate?: number
  /** Adaptive pacing: see config/rewrap.ts `rotation.niceRatio` (0 = full speed). */
  niceRatio?: number
  /** Pace by the foreground latency budget with this ratio (see config/rewrap.ts `rotation.pacing`). */
  latencyBudget?: number
  /** Progress after every batch. */
  onProgress?: (progress: RotationProgress) => void | Promise<void>
  /**
   * Aborting finishes the current batch and leaves the run resumable. Abort
   * with the reason `'operator'` for a person's stop (the run then stays
   * paused: the scheduler leaves it alone); any other reason is a shutdown.
   */
  signal?: AbortSignal
}

/**
 * Rewraps the stale rows of a rotation run.
 */
@inject()
export class StaleRowRewrapper {
  constructor(
    private kms: KmsManager,
    private clock: Clock,
    private store: RotationStore
  ) {}

  #config(): RewrapConfig['rotation'] {
    return app.config.get<RewrapConfig>('rewrap').rotation
  }

  /**
   * Rewraps every row of `run`'s KEK below its target version, batch by
   * batch from the run's cursor, then passes again over rows written at
   * an old version meanwhile (bounded). Ends the run `completed`,
   * `completed_with_errors` or `cancelled` (resumable), and returns it.
   * Throws E_LOCK_LOST (nothing of the batch written) once `lock`'s session
   * is gone, and the database's errors while it is unreachable.
   */
  async rewrapStaleRows(
    run: RotationRun,
    options: RewrapOptions,
    lock: HeldLock
  ): Promise<RotationRun> {
    const kind = await this.kind(run)
    return this.#engine().drive(kind, run, this.pacing(run, options), options, lock)
  }

  /**
   * The rotation run kind of `run` (its store, one KMS rewrap per batch to
   * the run's target version).
   */
  async kind(run: RotationRun): Promise<RunKind<RotationRun, StaleRow, RewrapResults>> {
    const target = run.targetVersion!
    const driver = await this.kms.forKek(run.kekName)
    return {
      label: 'rotation',
      store: this.store,
      logContext: (r) => ({ kek: r.kekName, run: r.id, target }),
      prepare: (r, rows) =>
        driver.rewrap(
          r.kekName,
          rows.map((row) => row.wrappedDek),
          target
        ),
      leftoverMessage: (_r, remaining) =>
        `${remaining} rows still below version ${target}; see key_rotation_failures`,
    }
  }

  /** Sizes, bounds and pacing of `run` (flags, then the run's options, then config/rewrap.ts). */
  pacing(run: RotationRun, options: RewrapOptions): EnginePacing {
    const config = this.#config()
    const batchSize = Number(run.options.batchSize ?? config.batchSize)
    return {
      batchSize,
      pacedBatchSize: Math.min(batchSize, config.pacedBatchSize),
      sleepMs: Number(options.sleepMs ?? run.options.sleepMs ?? config.sleepMs),
      maxRate: Number(options.maxRate ?? run.options.maxRate ?? config.maxRate),
      ...resolvePacing(options, run.options, config, config.niceRatio),
      maxPasses: config.maxPasses,
      kmsOutageMs: config.kmsOutageMs,
      overlap: true,
    }
  }

  #engine(): RunEngine {
    const config = this.#config()
    return new RunEngine(this.clock, new ForegroundDetector(this.clock, config.foreground))
  }
}
