import { performance } from 'node:perf_hooks'
import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { EntryService } from '#services/entry_service'
import { KekService } from '#services/kek_service'
import { demoSeedValidator } from '#validators/kek'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace demo:seed --kek <name> --rows <n> [--batch 1000] [--json]`
 */
export default class DemoSeed extends RewrapCommand {
  static commandName = 'demo:seed'
  static description =
    'Insert demo entries fast (creates the KEK if missing): one KMS wrap call and one INSERT per batch'
  static help = [
    'Payloads are small JSON objects {"n": i, "note": "demo"}.',
    '{{ binaryName }} demo:seed --kek demo --rows 100000',
    '{{ binaryName }} demo:seed --kek demo --rows 5000 --batch 500 --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to seed under. */
  @flags.string({ description: 'KEK name (created when missing)' })
  declare kek?: string

  /** Rows to insert. */
  @flags.number({ description: 'Number of entries to insert' })
  declare rows?: number

  /** Rows per batch. */
  @flags.number({
    description: 'Entries per batch (one KMS call and one INSERT each)',
    default: 1000,
  })
  declare batch: number

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the result as JSON' })
  declare json?: boolean

  /**
   * Validates the flags, makes sure the KEK exists, inserts the rows.
   */
  @inject()
  async run(keks: KekService, entries: EntryService) {
    const input = await demoSeedValidator.validate({
      kek: this.kek,
      rows: this.rows,
      batch: this.batch,
    })
    const format = 'seeding [{bar}] {percentage}% | {value}/{total} rows | {rate} rows/s'
    const { created, result, started } = await this.withProgress(format, async (bar) => {
      const kek = await keks.create(input.kek, { ifMissing: true })
      if (kek.created && !this.json) this.logger.info(`Created KEK "${input.kek}"`)
      const start = performance.now()
      let reportedDecile = 0
      bar?.update(0, input.rows, { rate: 0 })
      const seeded = await entries.seed(input.kek, {
        rows: input.rows,
        batchSize: input.batch,
        onProgress: (done, total) => {
          const rate = Math.round(done / Math.max((performance.now() - start) / 1000, 1e-6))
          if (bar) {
            bar.update(done, total, { rate })
          } else if (!this.json && Math.floor((done * 10) / total) > reportedDecile) {
            reportedDecile = Math.floor((done * 10) / total)
            this.logger.info(`${done}/${total} rows (${rate} rows/s)`)
          }
        },
      })
      return { created: kek.created, result: seeded, started: start }
    })

    const seconds = (performance.now() - started) / 1000
    const rowsPerSecond = Math.round(result.rows / Math.max(seconds, 1e-6))
    if (this.json) {
      this.logger.log(
        JSON.stringify({
          kek: input.kek,
          kekCreated: created,
          ...result,
          seconds: Number(seconds.toFixed(3)),
          rowsPerSecond,
        })
      )
      return
    }
    this.logger.success(
      `Seeded ${result.rows} rows into KEK "${input.kek}" in ${seconds.toFixed(2)}s (${rowsPerSecond} rows/s)`
    )
  }
}
