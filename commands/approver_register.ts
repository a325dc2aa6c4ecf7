import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { GovernanceCommand } from '#app/commands/governance_command'
import { ApproverService } from '#services/approver_service'
import { approvalFlagValidator } from '#validators/approval'
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
    'Once two approvers hold roles, a new AID needs --approval <said> (approval:request',
    'approver --param aid=<AID>, plus --param authority=true for an authority).',
    '{{ binaryName }} approver:register alice.keystore.icp.json',
    '{{ binaryName }} approver:register carol.keystore.icp.json --approval E…',
  ]
  static options: CommandOptions = { startApp: true }

  /** The `<keystore>.icp.json` file approver:init wrote. */
  @args.string({ description: 'Inception file written by approver:init' })
  declare file: string

  /** Register as a role authority. */
  @flags.boolean({ description: 'Register the AID as a role authority' })
  declare authority?: boolean

  /** SAID of the approved request, once the registry is governed. */
  @flags.string({ description: 'SAID of the approved request (approval:request, approval:sign)' })
  declare approval?: string

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
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const registered = await approvers.register(body, {
      approval,
      actor: process.env.USER ?? 'cli',
    })
    this.print(registered, [
      `${registered.created ? 'Registered' : 'Already registered'} ${registered.authority ? 'role authority' : 'approver'} "${registered.name}": ${registered.aid}`,
    ])
  }
}
