import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KeyLifecycleService } from '#services/key_lifecycle_service'
import { unretireValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace kek:unretire <kek> [--to N]`: rollback of kek:retire.
 */
export default class KekUnretire extends RewrapCommand {
  static commandName = 'kek:unretire'
  static description =
    'Lower min_decryption_version again so retired versions unwrap (rollback, restoring an old backup)'
  static help = [
    'Default --to: the lowest version not trimmed. Trimmed versions cannot come back (exit 1).',
    '',
    '{{ binaryName }} kek:unretire orders',
    '{{ binaryName }} kek:unretire orders --to 3 --json',
    'Dual control (on by default): needs --approval <said> (approval:request unretire [--param to=N]).',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to unretire. */
  @args.string({ description: 'KEK name', required: true })
  declare kek: string

  /** Target min decryption version. */
  @flags.number({ description: 'New min decryption version (default: lowest not trimmed)' })
  declare to?: number

  /** Machine output. */
  @flags.boolean({ description: 'Print the result as JSON (one object)' })
  declare json?: boolean

  /** Dual control: the approved request this act runs under. */
  @flags.string({ description: 'SAID of the approved request (approval:request, approval:sign)' })
  declare approval?: string

  /**
   * Validates, unretires, reports.
   */
  @inject()
  async run(lifecycle: KeyLifecycleService) {
    const input = await unretireValidator.validate({ kek: this.kek, to: this.to })
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const result = await lifecycle.unretire(input.kek, {
      to: input.to,
      approval,
      actor: process.env.USER ?? 'cli',
    })
    if (this.json) return this.logger.log(JSON.stringify(result))
    this.logger.success(
      `KEK "${input.kek}": versions from v${result.minDecryptionVersion} unwrap again` +
        (result.changed ? '' : ' (unchanged)')
    )
  }
}
