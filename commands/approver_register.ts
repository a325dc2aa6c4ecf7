import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { GovernanceCommand } from '#app/commands/governance_command'
import { ApproverService } from '#services/approver_service'
import { registerApproverValidator } from '#validators/governance'

/**
 * `node ace approver:register <inception-file> [--authority] [--json]`
 */
export default class ApproverRegister extends GovernanceCommand {
  static commandName = 'approver:register'
  static description = 'Register an approver (or a role authority) from its signed inception'
  static help = [
    'Verifies the SAID, the self-signature and the next-key commitment of the inception written',
    'by approver:init and stores the key state. An AID keeps the key event log it was first',
    'registered with. --authority makes it a role authority (it may issue role credentials).',
    '{{ binaryName }} approver:register alice.keystore.icp.json',
  ]
  static options: CommandOptions = { startApp: true }

  /** The `<keystore>.icp.json` file approver:init wrote. */
  @args.string({ description: 'Inception file written by approver:init' })
  declare file: string

  /** Register as a role authority. */
  @flags.boolean({ description: 'Register the AID as a role authority' })
  declare authority?: boolean

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the registered approver as JSON' })
  declare json?: boolean

  /** Reads, validates and registers the inception. */
  @inject()
  async run(approvers: ApproverService) {
    const body = await registerApproverValidator.validate({
      ...(await this.readJson(this.file, 'inception')),
      authority: this.authority ?? false,
    })
    const registered = await approvers.register(body)
    this.print(registered, [
      `${registered.created ? 'Registered' : 'Already registered'} ${registered.authority ? 'role authority' : 'approver'} "${registered.name}": ${registered.aid}`,
    ])
  }
}
