import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { GovernanceCommand } from '#app/commands/governance_command'
import { CredentialService } from '#services/credential_service'

/**
 * `node ace credential:register <file> [--json]`
 */
export default class CredentialRegister extends GovernanceCommand {
  static commandName = 'credential:register'
  static description = 'Register a signed role credential written by credential:issue'
  static help = [
    'The issuer must be a registered role authority that signed with its current keys, the',
    'subject a registered approver and the role one of config/governance.ts.',
    '{{ binaryName }} credential:register alice-cto.json',
  ]
  static options: CommandOptions = { startApp: true }

  /** The signed credential file. */
  @args.string({ description: 'Credential file written by credential:issue' })
  declare file: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the registered credential as JSON' })
  declare json?: boolean

  /** Verifies and stores the credential. */
  @inject()
  async run(credentials: CredentialService) {
    const registered = await credentials.register(await this.readJson(this.file, 'credential'))
    this.print(registered, [
      `${registered.created ? 'Registered' : 'Already registered'} credential ${registered.said}: role ${registered.role} to ${registered.subject}`,
    ])
  }
}
