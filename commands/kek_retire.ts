import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KeyLifecycleService } from '#services/key_lifecycle_service'
import { lifecycleKekValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace kek:retire <kek>`: retire every version below the latest.
 */
export default class KekRetire extends RewrapCommand {
  static commandName = 'kek:retire'
  static description =
    'Raise min_decryption_version to the latest version so older versions can no longer unwrap (reversible with kek:unretire)'
  static help = [
    'Refused (exit 1) during the soak period (the latest version is younger than lifecycle soakMs,',
    'default 24 h), while any row is below the latest version, or while a rotation run is unfinished.',
    '',
    'Dual control (on by default): needs --approval <said> (approval:request retire --kek <k>).',
    '{{ binaryName }} kek:retire orders --approval E…',
    '{{ binaryName }} kek:retire orders --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to retire. */
  @args.string({ description: 'KEK name', required: true })
  declare kek: string

  /** Machine output. */
  @flags.boolean({ description: 'Print the result as JSON (one object)' })
  declare json?: boolean

  /** Dual control: the approved request this act runs under. */
  @flags.string({ description: 'SAID of the approved request (approval:request, approval:sign)' })
  declare approval?: string

  /**
   * Validates, retires, reports.
   */
  @inject()
  async run(lifecycle: KeyLifecycleService) {
    const { kek } = await lifecycleKekValidator.validate({ kek: this.kek })
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const result = await lifecycle.retire(kek, { requestedBy: process.env.USER ?? null, approval })
    if (this.json) return this.logger.log(JSON.stringify(result))
    this.logger.success(
      result.changed
        ? `KEK "${kek}": versions below v${result.minDecryptionVersion} retired; trim allowed after ${result.trimAllowedAt ?? 'unknown'}`
        : `KEK "${kek}" was already retired up to v${result.minDecryptionVersion}`
    )
  }
}
