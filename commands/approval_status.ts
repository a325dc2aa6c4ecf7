import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import { GovernanceCommand } from '#app/commands/governance_command'
import { ApprovalService } from '#services/approval_service'
import { ApprovalTransformer } from '#transformers/approval_transformer'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace approval:status <said> [--json]`
 */
export default class ApprovalStatusCommand extends GovernanceCommand {
  static commandName = 'approval:status'
  static description = 'Show an approval request: roles held, roles missing, who signed'
  static help = [
    'Exit 0 whatever the state; "approved: yes" means the act may run with --approval <said> now.',
    '{{ binaryName }} approval:status E…',
    '{{ binaryName }} approval:status E… --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** The request's SAID. */
  @args.string({ description: 'SAID of the approval request' })
  declare said: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the status as JSON' })
  declare json?: boolean

  /** Prints the request's status. */
  @inject()
  async run(approvals: ApprovalService) {
    const { approval: said } = await approvalFlagValidator.validate({ approval: this.said })
    if (!said) throw new E_GOVERNANCE_INPUT(['<said> is required'])
    const view = ApprovalTransformer.transform(await approvals.status(said))
    this.print(view, [
      `Request ${view.said}: ${view.action} of KEK "${view.kek}" ${JSON.stringify(view.params)}`,
      `State: ${view.state}${view.usedBy ? ` (used by ${view.usedBy} at ${view.usedAt})` : ''}; valid until ${view.expires}`,
      `Roles held: ${view.held.join(', ') || '(none)'}; missing: ${view.missing.join(', ') || '(none)'}`,
      ...view.signers.map(
        (s) =>
          `  signed by ${s.aid}${s.name ? ` (${s.name})` : ''} as ${s.roles.join(', ') || 'no required role'}, keys sn ${s.sn}, ${s.signedAt}`
      ),
      `Approved: ${view.approved ? 'yes' : `no${view.problem ? ` (${view.problem.code}: ${view.problem.reason})` : ''}`}`,
    ])
  }
}
