import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KeyLifecycleService } from '#services/key_lifecycle_service'
import { lifecycleKekValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace kek:trim <kek>`: delete retired versions permanently.
 */
export default class KekTrim extends RewrapCommand {
  static commandName = 'kek:trim'
  static description =
    'Delete the retired versions of a KEK (below min_decryption_version) permanently, after the retention period'
  static help = [
    'Refused (exit 1) when nothing is retired, before the retention period since kek:retire is over',
    '(lifecycle retentionMs, default 30 days) or when rows still need a retired version.',
    'Sets min_encryption_version to the latest version first when it is 0 (Vault requires it).',
    'PERMANENT: backups holding DEKs wrapped under trimmed versions can no longer be restored.',
    '',
    '{{ binaryName }} kek:trim orders --approval E…',
    'Dual control (on by default): needs --approval <said> (approval:request trim --kek <k>).',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK to trim. */
  @args.string({ description: 'KEK name', required: true })
  declare kek: string

  /** Machine output. */
  @flags.boolean({ description: 'Print the result as JSON (one object)' })
  declare json?: boolean

  /** Dual control: the approved request this act runs under. */
  @flags.string({ description: 'SAID of the approved request (approval:request, approval:sign)' })
  declare approval?: string

  /**
   * Validates, trims, reports.
   */
  @inject()
  async run(lifecycle: KeyLifecycleService) {
    const { kek } = await lifecycleKekValidator.validate({ kek: this.kek })
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const result = await lifecycle.trim(kek, { approval, actor: process.env.USER ?? 'cli' })
    if (this.json) return this.logger.log(JSON.stringify(result))
    this.logger.success(
      `KEK "${kek}": versions below v${result.minAvailableVersion} deleted permanently`
    )
  }
}
