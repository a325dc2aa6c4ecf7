import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { TokenService } from '#services/token_service'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace token:list [--json]`
 */
export default class TokenList extends RewrapCommand {
  static commandName = 'token:list'
  static description =
    'List access tokens: id, client, abilities, created, last used, expiry (never the token)'
  static help = [
    'Revoke one with token:revoke <id>.',
    '{{ binaryName }} token:list',
    '{{ binaryName }} token:list --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print a JSON object { tokens: [...] }' })
  declare json?: boolean

  /**
   * Lists every access token.
   */
  @inject()
  async run(tokens: TokenService) {
    const list = await tokens.list()
    if (this.json) {
      this.logger.log(JSON.stringify({ tokens: list }))
      return
    }
    if (list.length === 0) {
      this.logger.info('No access tokens (create one with token:create)')
      return
    }
    const table = this.ui.table()
    table.head(['Id', 'Client', 'Abilities', 'Created', 'Last used', 'Expires'])
    for (const t of list) {
      table.row([
        t.tokenId,
        `${t.clientName} (#${t.clientId})`,
        t.abilities.join(', '),
        t.createdAt ?? '-',
        t.lastUsedAt ?? 'never',
        t.expiresAt ? `${t.expiresAt}${t.expired ? ' (expired)' : ''}` : 'never',
      ])
    }
    table.render()
  }
}
