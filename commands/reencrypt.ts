import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import {
  ReencryptService,
  type ReencryptFailure,
  type ReencryptRun,
} from '#services/reencrypt_service'
import { reencryptValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'
import {
  DISTRIBUTED_FLAG,
  LATENCY_BUDGET_FLAG,
  NICE_RATIO_FLAG,
  WORKERS_FLAG,
} from '#app/commands/chunked_run_flags'
import { approvalFlagValidator } from '#validators/approval'
import { LocalWorkers } from '#app/commands/local_workers'
import { DistributedRuns } from '#services/distributed_runs'

/**
 * `node ace reencrypt --from <kek> --to <kek>`: recovery for a compromised KEK.
 */
export default class Reencrypt extends RewrapCommand {
  static commandName = 'reencrypt'
  static description =
    'Re-encrypt every row of a (compromised) KEK under another: a fresh DEK per row, payload sealed again'
  static help = [
    'Per row: unwrap the old DEK, open the payload, generate a fresh DEK wrapped by --to, seal the',
    'payload under it (bound to the new KEK name). Batched, compare-and-swap (concurrent writes win and',
    'are picked up by the next pass), resumable: running the same command again continues the',
    'unfinished run. Ctrl-C stops after the current batch. Exit 0 only when no row is left under --from.',
    '',
    'Dual control (on by default): a new run needs --approval <said> (approval:request reencrypt',
    '--kek <from> --param to=<to>); continuing an unfinished run does not.',
    '{{ binaryName }} reencrypt --from orders --to orders-2026 --approval E…',
    '{{ binaryName }} reencrypt --from orders --to orders-2026 --batch-size 200 --sleep-ms 50 --json',
    '{{ binaryName }} reencrypt --from orders --to orders-2026 --workers 4   (4 local chunk workers)',
    '{{ binaryName }} reencrypt --from orders --to orders-2026 --distributed (rewrap:worker anywhere)',
  ]
  static options: CommandOptions = { startApp: true }

  /** Source KEK. */
  @flags.string({ description: 'KEK to move away from (compromised)', required: true })
  declare from: string

  /** Target KEK. */
  @flags.string({ description: 'KEK to re-encrypt under (must exist: kek:create)', required: true })
  declare to: string

  /** Rows per batch. */
  @flags.number({ description: 'Rows per batch (default 500)' })
  declare batchSize?: number

  /** Sleep between batches. */
  @flags.number({ description: 'Milliseconds to sleep after every batch (default 0)' })
  declare sleepMs?: number

  /** Adaptive pacing. */
  @flags.number(NICE_RATIO_FLAG)
  declare niceRatio?: number

  /** Pacing by the foreground latency budget. */
  @flags.number(LATENCY_BUDGET_FLAG)
  declare latencyBudget?: number

  /** Machine output. */
  @flags.boolean({ description: 'Print the finished run as JSON (one object)' })
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
   * Validates flags, runs (or resumes) the re-encryption, reports.
   */
  @inject()
  async run(service: ReencryptService) {
    const input = await reencryptValidator.validate({
      from: this.from,
      to: this.to,
      batchSize: this.batchSize,
      sleepMs: this.sleepMs,
      niceRatio: this.niceRatio,
      workers: this.workers,
      latencyBudget: this.latencyBudget,
    })
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const distributed = !!this.distributed || !!input.workers
    const local = input.workers
      ? new LocalWorkers(this.app.makePath('ace.js'), input.workers)
      : null
    local?.start()
    let outcome: { run: ReencryptRun; failures: ReencryptFailure[] }
    try {
      outcome = await this.background(
        'reencrypt',
        (r: ReencryptRun) => ({ run: r.id, from: r.fromKek, to: r.toKek }),
        async ({ signal, onProgress }) => {
          const done = await service.reencrypt(input.from, input.to, {
            batchSize: input.batchSize,
            sleepMs: input.sleepMs,
            niceRatio: input.niceRatio,
            latencyBudget: input.latencyBudget,
            approval,
            actor: process.env.USER ?? 'cli',
            ...(distributed ? { distributed: true } : { signal, onProgress }),
          })
          if (distributed && done.status === 'running') {
            // Chunks on the queue: follow the workers' progress (Ctrl-C requests a cancel).
            const runs = await this.app.container.make(DistributedRuns)
            const followed = await runs.follow<ReencryptRun>('reencrypt', done.id, {
              signal,
              onProgress,
            })
            return { run: followed, failures: await service.failures(followed.id, 100) }
          }
          // Inside the background work: a SIGTERM keeps the database open until this is read.
          return { run: done, failures: await service.failures(done.id, 100) }
        }
      )
    } finally {
      // Stopped however the run ends: an error must not leave rewrap:worker children behind.
      await local?.stop()
    }
    await this.#report(outcome.run, outcome.failures)
  }

  async #report(run: ReencryptRun, failures: ReencryptFailure[]) {
    if (run.status !== 'completed') this.exitCode = run.status === 'cancelled' ? 130 : 1
    if (this.json) return this.logger.log(JSON.stringify({ ...run, failures }))
    for (const failure of failures.slice(0, 10)) {
      this.logger.warning(`entry ${failure.entryId}: ${failure.errorCode}`)
    }
    if (failures.length > 10)
      this.logger.warning(`… and more: see reencrypt_failures (run ${run.id})`)
    const counts = `re-encrypted ${run.reencrypted}, skipped ${run.skipped} (rewritten meanwhile), failed ${run.failed}`
    if (run.status === 'completed') {
      this.logger.success(`Run #${run.id}: no row left under "${run.fromKek}"; ${counts}`)
    } else if (run.status === 'cancelled') {
      this.logger.warning(
        `Run #${run.id} stopped; ${counts}. Continue with the same command: reencrypt --from ${run.fromKek} --to ${run.toKek}`
      )
    } else {
      this.logger.error(`Run #${run.id} ${run.status}: ${run.lastError ?? ''}; ${counts}`)
    }
  }
}
