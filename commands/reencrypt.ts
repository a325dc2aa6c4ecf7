import { inject } from '@adonisjs/core'
import { BaseCommand, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import cliProgress from 'cli-progress'
import { errorLine } from '#exceptions/handler'
import {
  ReencryptService,
  type ReencryptProgress,
  type ReencryptRun,
} from '#services/reencrypt_service'
import { reencryptValidator } from '#validators/lifecycle'

/**
 * `node ace reencrypt --from <kek> --to <kek>`: recovery for a compromised KEK.
 */
export default class Reencrypt extends BaseCommand {
  static commandName = 'reencrypt'
  static description =
    'Re-encrypt every row of a (compromised) KEK under another: a fresh DEK per row, payload sealed again'
  static help = [
    'Per row: unwrap the old DEK, open the payload, generate a fresh DEK wrapped by --to, seal the',
    'payload under it (bound to the new KEK name). Batched, compare-and-swap (concurrent writes win and',
    'are picked up by the next pass), resumable: running the same command again continues the',
    'unfinished run. Ctrl-C stops after the current batch. Exit 0 only when no row is left under --from.',
    '',
    '{{ binaryName }} reencrypt --from orders --to orders-2026',
    '{{ binaryName }} reencrypt --from orders --to orders-2026 --batch-size 200 --sleep-ms 50 --json',
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

  /** Machine output. */
  @flags.boolean({ description: 'Print the finished run as JSON (one object)' })
  declare json?: boolean

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
    })
    const controller = new AbortController()
    const stop = () => {
      if (controller.signal.aborted) process.exit(130)
      controller.abort()
      if (!this.json) this.logger.warning('Stopping after the current batch… (again to force)')
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    const bar =
      process.stdout.isTTY && !this.json && !this.app.inTest
        ? new cliProgress.SingleBar(
            {
              format:
                'reencrypt [{bar}] {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}',
            },
            cliProgress.Presets.shades_classic
          )
        : null
    let lastLog = 0
    const onProgress = (p: ReencryptProgress) => {
      if (bar) {
        if (!bar.isActive) bar.start(p.total, p.done, { rate: p.rowsPerSecond })
        bar.setTotal(p.total)
        bar.update(p.done, { rate: p.rowsPerSecond })
      } else if (!this.json && Date.now() - lastLog >= 2000) {
        lastLog = Date.now()
        this.logger.log(
          JSON.stringify({
            event: 'reencrypt.progress',
            run: p.run.id,
            from: p.run.fromKek,
            to: p.run.toKek,
            done: p.done,
            total: p.total,
            rowsPerSecond: p.rowsPerSecond,
            etaSeconds: p.etaSeconds,
          })
        )
      }
    }
    try {
      const run = await service.reencrypt(input.from, input.to, {
        batchSize: input.batchSize,
        sleepMs: input.sleepMs,
        signal: controller.signal,
        onProgress,
      })
      bar?.stop()
      this.#report(run)
    } finally {
      bar?.stop()
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  }

  #report(run: ReencryptRun) {
    if (run.status !== 'completed') this.exitCode = run.status === 'cancelled' ? 130 : 1
    if (this.json) return this.logger.log(JSON.stringify(run))
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

  /**
   * Failures and refusals: one line with the error code, exit code 1.
   */
  async completed() {
    if (!this.error) return false
    this.exitCode = 1
    if (this.json) this.logger.log(JSON.stringify({ error: errorLine(this.error) }))
    else this.logger.error(errorLine(this.error))
    return true
  }
}
