import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { TokenService } from '#services/token_service'
import { revokeTokenValidator } from '#validators/token'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace token:revoke <id> [--json]`
 */
export default class TokenRevoke extends RewrapCommand {
  static commandName = 'token:revoke'
  static description = 'Revoke (delete) an access token by its id: it stops working at once'
  static help = [
    'Ids are those token:list shows. Unknown id: E_TOKEN_NOT_FOUND (exit 1).',
    '{{ binaryName }} token:revoke 12',
    '{{ binaryName }} token:revoke 12 --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** The token's id. */
  @args.string({ description: 'Id of the access token (see token:list)' })
  declare id: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print a JSON object { revoked: {...} }' })
  declare json?: boolean

  /**
   * Validates the id and revokes the token.
   */
  @inject()
  async run(tokens: TokenService) {
    const { id } = await revokeTokenValidator.validate({ id: this.id })
    const revoked = await tokens.revoke(id)
    if (this.json) {
      this.logger.log(JSON.stringify({ revoked }))
      return
    }
    this.logger.success(
      `Revoked access token ${revoked.tokenId} of API client "${revoked.clientName}" (#${revoked.clientId})`
    )
  }
}
