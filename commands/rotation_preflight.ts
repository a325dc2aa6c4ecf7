import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KekPolicies } from '#services/kek_policies'
import { RotationChecksService, type PreflightReport } from '#services/rotation_checks_service'
import { lifecycleKekValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace rotation:preflight [kek]`: the checklist before a rotation.
 */
export default class RotationPreflight extends RewrapCommand {
  static commandName = 'rotation:preflight'
  static description =
    'Check a KEK is ready to rotate: KMS reachable, key exists, wrap/rewrap/unwrap permitted, no run in progress, no pending migrations; rows to rewrap and an estimate'
  static help = [
    'Without a KEK, checks every managed KEK (config/rewrap.ts lifecycle.keks).',
    'Exit code 0 when every check passes, 1 otherwise (the failed checks are printed).',
    '',
    '{{ binaryName }} rotation:preflight orders',
    '{{ binaryName }} rotation:preflight orders --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to check (default: every managed KEK). */
  @args.string({ description: 'KEK name (default: every managed KEK)', required: false })
  declare kek?: string

  /** Machine output. */
  @flags.boolean({ description: 'Print the report as JSON (one object)' })
  declare json?: boolean

  /**
   * Runs the checks and reports them.
   */
  @inject()
  async run(checks: RotationChecksService, policies: KekPolicies) {
    const names = await this.#names(policies)
    const reports: PreflightReport[] = []
    for (const kek of names) reports.push(await checks.preflight(kek))
    this.printKekReports(reports, {
      named: !!this.kek,
      each: (report) => {
        for (const check of report.checks) {
          if (check.ok) this.logger.success(`[${report.kekName}] ${check.name}: ${check.detail}`)
          else this.logger.error(`[${report.kekName}] ${check.name}: ${check.detail}`)
        }
      },
      after: (ok) => {
        if (ok) this.logger.success('Preflight passed: ready to rotate')
        else this.logger.error('Preflight failed: fix the checks above before rotating')
      },
    })
  }

  async #names(policies: KekPolicies): Promise<string[]> {
    if (this.kek !== undefined) {
      const input = await lifecycleKekValidator.validate({ kek: this.kek })
      return [input.kek]
    }
    return policies.managedNames()
  }
}
