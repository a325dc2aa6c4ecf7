import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { LocalWorkers } from '#app/commands/local_workers'
import { DistributedRuns } from '#services/distributed_runs'
import { KeyRotationService, type RotateOptions } from '#services/key_rotation_service'
import type { RotationRun } from '#services/rotation_store'
import { rotateKekValidator } from '#validators/rotation'
import { RewrapCommand } from '#app/commands/rewrap_command'
import {
  DISTRIBUTED_FLAG,
  LATENCY_BUDGET_FLAG,
  NICE_RATIO_FLAG,
  WORKERS_FLAG,
} from '#app/commands/chunked_run_flags'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace rotate:kek <kek>`: rotate a KEK and rewrap every stale DEK.
 */
export default class RotateKek extends RewrapCommand {
  static commandName = 'rotate:kek'
  static description =
    'Rotate a KEK (new version, used by new writes at once) and rewrap every stale DEK in the background'
  static help = [
    'Step A asks the KMS for a new KEK version; Step B rewraps the DEKs of every row below it in',
    'batches (one KMS rewrap call and one compare-and-swap UPDATE each), resumable from the last',
    'committed batch. Payloads are never decrypted. Ctrl-C finishes the current batch and leaves',
    'the run resumable with --resume. Exit code 0 only when every row is at the target version.',
    '',
    'Dual control (on by default): a new run needs --approval <said> of a request approved by',
    'every required role (approval:request rotate, approval:sign); --resume does not.',
    '',
    '{{ binaryName }} rotate:kek orders --approval E…',
    '{{ binaryName }} rotate:kek orders --dry-run',
    '{{ binaryName }} rotate:kek orders --resume',
    '{{ binaryName }} rotate:kek orders --no-rotate --max-rate 5000 --json',
    '{{ binaryName }} rotate:kek orders --workers 4          (chunks worked by 4 local processes)',
    '{{ binaryName }} rotate:kek orders --distributed        (chunks for rewrap:worker anywhere)',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to rotate. */
  @args.string({ description: 'KEK name', required: true })
  declare kek: string

  /** Rows per batch. */
  @flags.number({
    description: 'Rows per batch: one KMS rewrap call and one UPDATE (default 1000)',
  })
  declare batchSize?: number

  /** Sleep between batches. */
  @flags.number({ description: 'Milliseconds to sleep after every batch (default 0)' })
  declare sleepMs?: number

  /** Rows/s ceiling. */
  @flags.number({ description: 'Rewrap at most this many rows per second (default: no limit)' })
  declare maxRate?: number

  /** Adaptive pacing. */
  @flags.number(NICE_RATIO_FLAG)
  declare niceRatio?: number

  /** Pacing by the foreground latency budget. */
  @flags.number(LATENCY_BUDGET_FLAG)
  declare latencyBudget?: number

  /** Step A on/off. */
  @flags.boolean({
    description:
      'Rotate the KEK first (--no-rotate: only rewrap rows to the current latest version)',
    default: true,
    showNegatedVariantInHelp: true,
  })
  declare rotate: boolean

  /** Explicit target version. */
  @flags.number({
    description: 'Rewrap to this existing version instead of the latest (implies --no-rotate)',
  })
  declare targetVersion?: number

  /** Resume the unfinished run. */
  @flags.boolean({
    description: 'Continue the unfinished run of this KEK (never rotates the KEK again)',
  })
  declare resume?: boolean

  /** Plan only. */
  @flags.boolean({ description: 'Print the counts and an estimate; change nothing' })
  declare dryRun?: boolean

  /** Machine output. */
  @flags.boolean({ description: 'Print the result as JSON (one object) instead of text' })
  declare json?: boolean

  /** Chunks as jobs, with N local workers. */
  @flags.number(WORKERS_FLAG)
  declare workers?: number

  /** Chunks as jobs, worked elsewhere. */
  @flags.boolean(DISTRIBUTED_FLAG)
  declare distributed?: boolean

  /** Dual control: the approved request this act runs under. */
  @flags.string({ description: 'SAID of the approved request (approval:request, approval:sign)' })
  declare approval?: string

  /**
   * Validates flags, runs (or plans) the rotation, reports.
   */
  @inject()
  async run(rotations: KeyRotationService) {
    const input = await rotateKekValidator.validate({
      kek: this.kek,
      batchSize: this.batchSize,
      sleepMs: this.sleepMs,
      maxRate: this.maxRate,
      niceRatio: this.niceRatio,
      latencyBudget: this.latencyBudget,
      targetVersion: this.targetVersion,
      workers: this.workers,
    })
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const options = {
      rotate: this.rotate !== false,
      resume: !!this.resume,
      targetVersion: input.targetVersion,
      batchSize: input.batchSize,
      sleepMs: input.sleepMs,
      maxRate: input.maxRate,
      niceRatio: input.niceRatio,
      latencyBudget: input.latencyBudget,
      trigger: 'cli' as const,
      requestedBy: process.env.USER ?? null,
      approval,
    }

    if (this.dryRun) {
      const plan = await rotations.plan(input.kek, options)
      if (this.json) return this.logger.log(JSON.stringify({ dryRun: true, ...plan }))
      this.logger.info(
        `KEK "${plan.kekName}": latest v${plan.latestVersion}, target v${plan.targetVersion}` +
          (plan.rotatesKek ? ' (after rotating)' : '')
      )
      for (const v of plan.rowsPerVersion)
        this.logger.info(`  v${v.version}: ${v.rows} rows to rewrap`)
      this.logger.info(
        `${plan.staleRows} rows to rewrap, about ${plan.estimatedSeconds}s` +
          (plan.estimatedSecondsPaced > plan.estimatedSeconds
            ? ` (up to ${plan.estimatedSecondsPaced}s while the database serves other work)`
            : '') +
          (plan.quotaBound
            ? ` (quota-bound: the KMS's ceiling allows ${plan.quotaRowsPerSecond} rows/s)`
            : '') +
          '. Nothing changed.'
      )
      if (plan.unfinishedRun) {
        this.logger.warning(`Unfinished run #${plan.unfinishedRun.id}: continue it with --resume`)
      }
      return
    }

    if (this.distributed || input.workers) {
      return this.#report(await this.#distributed(rotations, input.kek, options, input.workers))
    }
    const run = await this.background<RotationRun, RotationRun>(
      'rotation',
      (r) => ({ run: r.id, kek: r.kekName }),
      ({ signal, onProgress }) => rotations.rotate(input.kek, { ...options, onProgress, signal })
    )
    this.#report(run)
  }

  /**
   * Step A here, then the chunks on the queue; with `workers`, that many
   * local `rewrap:worker` processes work them until the run ends. Follows the
   * run's progress; Ctrl-C / SIGTERM requests a cancel (resumable).
   */
  async #distributed(
    rotations: KeyRotationService,
    kek: string,
    options: RotateOptions,
    workers: number | undefined
  ): Promise<RotationRun> {
    const distributed = await this.app.container.make(DistributedRuns)
    const local = workers ? new LocalWorkers(this.app.makePath('ace.js'), workers) : null
    local?.start()
    try {
      return await this.background<RotationRun, RotationRun>(
        'rotation',
        (r) => ({ run: r.id, kek: r.kekName }),
        async ({ signal, onProgress }) => {
          const run = await rotations.rotate(kek, { ...options, distributed: true })
          if (run.status !== 'running') return run
          return distributed.follow<RotationRun>('rotation', run.id, { signal, onProgress })
        }
      )
    } finally {
      await local?.stop()
    }
  }

  #report(run: RotationRun) {
    if (run.status !== 'completed') this.exitCode = run.status === 'cancelled' ? 130 : 1
    if (this.json) {
      this.logger.log(JSON.stringify(run))
      return
    }
    const counts = `rewrapped ${run.rewrapped}, skipped ${run.skipped} (changed by writes meanwhile), failed ${run.failed}`
    if (run.status === 'completed') {
      this.logger.success(
        `Run #${run.id}: every row of "${run.kekName}" is at v${run.targetVersion}; ${counts}`
      )
    } else if (run.status === 'cancelled') {
      this.logger.warning(
        `Run #${run.id} stopped; ${counts}. Continue with: rotate:kek ${run.kekName} --resume`
      )
    } else {
      this.logger.error(`Run #${run.id} ${run.status}: ${run.lastError ?? ''}; ${counts}`)
    }
  }
}
