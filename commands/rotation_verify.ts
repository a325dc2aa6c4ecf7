import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KekPolicies } from '#services/kek_policies'
import { RotationChecksService, type VerifyReport } from '#services/rotation_checks_service'
import { RowVerifier, type FullVerifyReport } from '#services/row_verifier'
import { verifyValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace rotation:verify [kek] [--sample N | --full]`: after a rotation,
 * and (`--full`) before deleting a KEK or trimming its versions.
 */
export default class RotationVerify extends RewrapCommand {
  static commandName = 'rotation:verify'
  static description =
    'Verify a rotation: no row below the latest KEK version, and a random sample of entries decrypts end to end'
  static help = [
    'Without a KEK, verifies every managed KEK (config/rewrap.ts lifecycle.keks).',
    'Exit code 0 when no row is below the latest version and every sampled entry decrypts; 1 otherwise.',
    'With --full every row of the KEK is decrypt-checked through the KMS (keyset batches of --batch-size),',
    'and the ids of the rows that do not open are printed: run it before deleting a KEK or trimming it.',
    '',
    '{{ binaryName }} rotation:verify orders',
    '{{ binaryName }} rotation:verify orders --sample 200 --json',
    '{{ binaryName }} rotation:verify orders --full',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to verify (default: every managed KEK). */
  @args.string({ description: 'KEK name (default: every managed KEK)', required: false })
  declare kek?: string

  /** Sample size. */
  @flags.number({ description: 'Random entries to decrypt end to end (default 20)' })
  declare sample?: number

  /** Check every row, not a sample. */
  @flags.boolean({ description: 'Decrypt-check EVERY row of the KEK (not a sample)' })
  declare full?: boolean

  /** Rows per batch of --full. */
  @flags.number({ description: 'Rows per batch with --full (default 500)' })
  declare batchSize?: number

  /** Machine output. */
  @flags.boolean({ description: 'Print the report as JSON (one object)' })
  declare json?: boolean

  /**
   * Counts, samples, reports.
   */
  @inject()
  async run(checks: RotationChecksService, policies: KekPolicies, verifier: RowVerifier) {
    const names: string[] = []
    let sample = this.sample
    let batchSize = this.batchSize
    if (this.kek !== undefined) {
      const input = await verifyValidator.validate({
        kek: this.kek,
        sample: this.sample,
        batchSize: this.batchSize,
      })
      names.push(input.kek)
      sample = input.sample
      batchSize = input.batchSize
    } else {
      names.push(...policies.managedNames())
    }
    if (this.full) return this.#full(verifier, names, batchSize)
    const reports: VerifyReport[] = []
    for (const kek of names) reports.push(await checks.verify(kek, { sample }))
    this.printKekReports(reports, {
      named: !!this.kek,
      each: (r) => {
        const line = `[${r.kekName}] ${r.staleRows} rows below v${r.latestVersion}; ${r.decrypted}/${r.sampled} sampled entries decrypted`
        if (r.ok) this.logger.success(line)
        else this.logger.error(line)
        for (const f of r.failures) this.logger.error(`  entry ${f.id}: ${f.code}`)
      },
    })
  }

  /** `--full`: every row of every named KEK. */
  async #full(verifier: RowVerifier, names: string[], batchSize?: number) {
    const reports: FullVerifyReport[] = []
    for (const kek of names) {
      const format = `verify ${kek} [{bar}] {percentage}% | {value}/{total} rows`
      reports.push(
        await this.withProgress(format, (bar) =>
          verifier.verify(kek, {
            batchSize,
            onProgress: (checked, total) => bar?.update(checked, total),
          })
        )
      )
    }
    this.printKekReports(reports, {
      named: !!this.kek,
      each: (r) => {
        const line = `[${r.kekName}] ${r.staleRows} rows below v${r.latestVersion}; ${r.checked - r.failed}/${r.checked} rows decrypted`
        if (r.ok) this.logger.success(line)
        else this.logger.error(line)
        if (r.failed > 0) {
          this.logger.error(
            `  rows that do not open: ${r.failures.map((f) => `${f.id} (${f.code})`).join(', ')}${r.failuresTruncated ? ', …' : ''}`
          )
        }
      },
    })
  }
}
