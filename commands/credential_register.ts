import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { GovernanceCommand } from '#app/commands/governance_command'
import { CredentialService } from '#services/credential_service'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace credential:register <file> [--json]`
 */
export default class CredentialRegister extends GovernanceCommand {
  static commandName = 'credential:register'
  static description = 'Register a signed role credential written by credential:issue'
  static help = [
    'The issuer must be a registered role authority that signed with its current keys, the',
    'subject a registered approver and the role one of config/governance.ts.',
    'Once two approvers hold roles, it needs --approval <said> (approval:request credential',
    '--param said=<credential SAID>).',
    '{{ binaryName }} credential:register alice-cto.json',
  ]
  static options: CommandOptions = { startApp: true }

  /** The signed credential file. */
  @args.string({ description: 'Credential file written by credential:issue' })
  declare file: string

  /** SAID of the approved request, once the registry is governed. */
  @flags.string({ description: 'SAID of the approved request (approval:request, approval:sign)' })
  declare approval?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the registered credential as JSON' })
  declare json?: boolean

  /** Verifies and stores the credential. */
  @inject()
  async run(credentials: CredentialService) {
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const registered = await credentials.register(await this.readJson(this.file, 'credential'), {
      approval,
      actor: process.env.USER ?? 'cli',
    })
    this.print(registered, [
      `${registered.created ? 'Registered' : 'Already registered'} credential ${registered.said}: role ${registered.role} to ${registered.subject}`,
    ])
  }
}
