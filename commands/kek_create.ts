import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KekService } from '#services/kek_service'
import { kekNameValidator } from '#validators/kek'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace kek:create <name> [--if-missing] [--json]`
 */
export default class KekCreate extends RewrapCommand {
  static commandName = 'kek:create'
  static description = 'Create a key-encryption key (version 1) in the KMS'
  static help = [
    'Names: letters, digits and _ . - (up to 128 characters).',
    '{{ binaryName }} kek:create orders',
    '{{ binaryName }} kek:create orders --if-missing --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** KEK name. */
  @args.string({ description: 'Name of the KEK' })
  declare name: string

  /** Existing KEK is not an error. */
  @flags.boolean({ description: 'Succeed without change when the KEK already exists' })
  declare ifMissing?: boolean

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the KEK as JSON' })
  declare json?: boolean

  /**
   * Validates the name and creates the KEK.
   */
  @inject()
  async run(keks: KekService) {
    const { name } = await kekNameValidator.validate({ name: this.name })
    const result = await keks.create(name, { ifMissing: this.ifMissing })
    if (this.json) {
      this.logger.log(JSON.stringify({ created: result.created, ...result.kek }))
      return
    }
    if (result.created) {
      this.logger.success(`Created KEK "${name}" (version ${result.kek.latestVersion})`)
    } else {
      this.logger.info(
        `KEK "${name}" already exists (latest version ${result.kek.latestVersion}); nothing changed`
      )
    }
  }
}
