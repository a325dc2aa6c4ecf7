import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { ready } from '#app/governance/signify'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import { signApproval } from '#app/governance/approval_request'
import { keystoreSigners } from '#app/governance/keystore'
import { GovernanceCommand } from '#app/commands/governance_command'
import { ApprovalService } from '#services/approval_service'
import { ApproverService } from '#services/approver_service'
import { ApprovalTransformer } from '#transformers/approval_transformer'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace approval:sign <said> --keystore <file> [--json]`
 */
export default class ApprovalSign extends GovernanceCommand {
  static commandName = 'approval:sign'
  static description =
    'Approve a request: sign its SAID with your keystore and submit the signature'
  static help = [
    'Opens the keystore here (passphrase from REWRAP_KEYSTORE_PASSPHRASE, else asked for without',
    'echo), signs the request document under your current keys and submits only the signature.',
    'The server checks it against your current key state and an unrevoked role credential.',
    '{{ binaryName }} approval:sign E… --keystore alice.keystore',
  ]
  static options: CommandOptions = { startApp: true }

  /** The request's SAID. */
  @args.string({ description: 'SAID of the approval request' })
  declare said: string

  /** The approver's keystore. */
  @flags.string({ description: 'Keystore file of the approver' })
  declare keystore?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the request status after signing as JSON' })
  declare json?: boolean

  /** Fetches the request, signs it locally, submits the signature group. */
  @inject()
  async run(approvals: ApprovalService, approvers: ApproverService) {
    const { approval: said } = await approvalFlagValidator.validate({ approval: this.said })
    if (!said || !this.keystore) {
      throw new E_GOVERNANCE_INPUT(['<said> and --keystore <file> are required'])
    }
    await ready()
    const request = await approvals.document(said)
    const secrets = await this.openKeystore(this.keystore)
    const state = await approvers.keyState(secrets.aid)
    const group = signApproval(request, keystoreSigners(secrets).current, {
      aid: state.aid,
      sn: state.sn,
      said: state.lastSaid,
    })
    const status = await approvals.sign(said, group, state.aid)
    const view = ApprovalTransformer.transform(status)
    this.print(view, [
      `Signed ${said} as ${state.aid}`,
      view.approved
        ? `Approved: ${view.action} of "${view.kek}" may run with --approval ${said}`
        : `Still missing: ${view.missing.join(', ') || view.problem?.code}`,
    ])
  }
}
