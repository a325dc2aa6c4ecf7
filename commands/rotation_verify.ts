import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KekPolicies } from '#services/kek_policies'
import { KeyLifecycleService, type VerifyReport } from '#services/key_lifecycle_service'
import { verifyValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace rotation:verify [kek] [--sample N]`: after a rotation.
 */
export default class RotationVerify extends RewrapCommand {
  static commandName = 'rotation:verify'
  static description =
    'Verify a rotation: no row below the latest KEK version, and a random sample of entries decrypts end to end'
  static help = [
    'Without a KEK, verifies every managed KEK (config/rewrap.ts lifecycle.keks).',
    'Exit code 0 when no row is below the latest version and every sampled entry decrypts; 1 otherwise.',
    '',
    '{{ binaryName }} rotation:verify orders',
    '{{ binaryName }} rotation:verify orders --sample 200 --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to verify (default: every managed KEK). */
  @args.string({ description: 'KEK name (default: every managed KEK)', required: false })
  declare kek?: string

  /** Sample size. */
  @flags.number({ description: 'Random entries to decrypt end to end (default 20)' })
  declare sample?: number

  /** Machine output. */
  @flags.boolean({ description: 'Print the report as JSON (one object)' })
  declare json?: boolean

  /**
   * Counts, samples, reports.
   */
  @inject()
  async run(lifecycle: KeyLifecycleService, policies: KekPolicies) {
    const names: string[] = []
    let sample = this.sample
    if (this.kek !== undefined) {
      const input = await verifyValidator.validate({ kek: this.kek, sample: this.sample })
      names.push(input.kek)
      sample = input.sample
    } else {
      names.push(...policies.managedNames())
    }
    const reports: VerifyReport[] = []
    for (const kek of names) reports.push(await lifecycle.verify(kek, { sample }))
    const ok = reports.length > 0 && reports.every((r) => r.ok)
    if (!ok) this.exitCode = 1
    if (this.json) {
      return this.logger.log(JSON.stringify(this.kek ? reports[0] : { ok, reports }))
    }
    if (reports.length === 0) return this.logger.error('E_NO_MANAGED_KEKS: name a KEK')
    for (const r of reports) {
      const line = `[${r.kekName}] ${r.staleRows} rows below v${r.latestVersion}; ${r.decrypted}/${r.sampled} sampled entries decrypted`
      if (r.ok) this.logger.success(line)
      else this.logger.error(line)
      for (const f of r.failures) this.logger.error(`  entry ${f.id}: ${f.code}`)
    }
  }
}
