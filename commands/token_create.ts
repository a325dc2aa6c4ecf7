import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { ABILITIES } from '#app/abilities'
import { TokenService } from '#services/token_service'
import { createTokenValidator, DEFAULT_TOKEN_LIFETIME } from '#validators/token'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace token:create --name <n> --abilities a,b [--expires-in 30d] [--json]`
 */
export default class TokenCreate extends RewrapCommand {
  static commandName = 'token:create'
  static description = 'Create an API client and a bearer access token with the given abilities'
  static help = [
    'The token is printed once and stored only as a hash: keep it now.',
    `It expires after ${DEFAULT_TOKEN_LIFETIME} unless --expires-in says otherwise (\`never\` only when asked for).`,
    `Abilities: ${ABILITIES.join(', ')}`,
    '{{ binaryName }} token:create --name dashboard --abilities entries:read,rotation:read',
    '{{ binaryName }} token:create --name ops --abilities rotation:admin --expires-in 30d --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** Name of the API client (service account). */
  @flags.string({ flagName: 'name', description: 'Name of the API client' })
  declare clientName?: string

  /** Abilities, comma separated (the flag may also repeat). */
  @flags.array({ description: `Comma separated abilities (${ABILITIES.join(', ')})` })
  declare abilities?: string[]

  /** Lifetime of the token. */
  @flags.string({
    description: `Token lifetime, e.g. 30d or 12h, or never (default: ${DEFAULT_TOKEN_LIFETIME})`,
  })
  declare expiresIn?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print a JSON object (the token is in its "token" field)' })
  declare json?: boolean

  /**
   * Validates the flags, creates the client and token, prints the token once.
   */
  @inject()
  async run(tokens: TokenService) {
    const input = await createTokenValidator.validate({
      name: this.clientName,
      abilities: (this.abilities ?? [])
        .flatMap((value) => String(value).split(','))
        .map((value) => value.trim())
        .filter(Boolean),
      expiresIn: this.expiresIn ?? DEFAULT_TOKEN_LIFETIME,
    })
    const created = await tokens.create(input)
    if (this.json) {
      this.logger.log(JSON.stringify(created))
      return
    }
    this.logger.success(
      `Created API client "${created.name}" (id ${created.clientId}) with abilities ${created.abilities.join(', ')}` +
        (created.expiresAt ? `, expiring ${created.expiresAt}` : ', never expiring')
    )
    this.logger.info('Access token (shown once; store it now):')
    this.logger.log(created.token)
  }
}
