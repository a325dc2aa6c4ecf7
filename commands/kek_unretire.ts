import { inject } from '@adonisjs/core'
import { BaseCommand, args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { errorLine } from '#exceptions/handler'
import { KeyLifecycleService } from '#services/key_lifecycle_service'
import { unretireValidator } from '#validators/lifecycle'

/**
 * `node ace kek:unretire <kek> [--to N]`: rollback of kek:retire.
 */
export default class KekUnretire extends BaseCommand {
  static commandName = 'kek:unretire'
  static description =
    'Lower min_decryption_version again so retired versions unwrap (rollback, restoring an old backup)'
  static help = [
    'Default --to: the lowest version not trimmed. Trimmed versions cannot come back (exit 1).',
    '',
    '{{ binaryName }} kek:unretire orders',
    '{{ binaryName }} kek:unretire orders --to 3 --json',
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

  /**
   * Validates, unretires, reports.
   */
  @inject()
  async run(lifecycle: KeyLifecycleService) {
    const input = await unretireValidator.validate({ kek: this.kek, to: this.to })
    const result = await lifecycle.unretire(input.kek, { to: input.to })
    if (this.json) return this.logger.log(JSON.stringify(result))
    this.logger.success(
      `KEK "${input.kek}": versions from v${result.minDecryptionVersion} unwrap again` +
        (result.changed ? '' : ' (unchanged)')
    )
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
