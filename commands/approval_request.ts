import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import { REGISTRY_KEK, REQUEST_ACTIONS } from '#app/governance/acts'
import { GovernanceCommand } from '#app/commands/governance_command'
import { ApprovalService } from '#services/approval_service'
import { ApprovalTransformer } from '#transformers/approval_transformer'
import { createApprovalValidator } from '#validators/approval'

/**
 * `node ace approval:request <action> [--kek <k>] [--param k=v …] [--expires-in 24h] [--json]`
 */
export default class ApprovalRequestCommand extends GovernanceCommand {
  static commandName = 'approval:request'
  static description =
    'Ask for a governed act: a request document, addressed by its SAID, to approve'
  static help = [
    `Actions: ${REQUEST_ACTIONS.join(', ')}. Parameters that matter (and only those) go in --param:`,
    'rotate: target_version=N or rotate=false; unretire: to=N; reencrypt: to=<kek> (required);',
    'standing-rotation: cryptoperiod=90d until=<date> (the scheduler policy, reused until then).',
    'Registry changes take no --kek: approver: aid=<AID> (authority=true for a role authority);',
    'credential, credential-revocation: said=<credential SAID>.',
    'Approvers then sign the SAID (approval:sign); the act runs with --approval <said>.',
    '{{ binaryName }} approval:request rotate --kek orders --json',
    '{{ binaryName }} approval:request reencrypt --kek orders --param to=orders-2027 --expires-in 2h',
    '{{ binaryName }} approval:request standing-rotation --kek orders --param cryptoperiod=90d --param until=2027-12-31',
    '{{ binaryName }} approval:request approver --param aid=E… --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** The act asked for. */
  @args.string({ description: `Action (${REQUEST_ACTIONS.join(', ')})` })
  declare action: string

  /** The KEK it acts on (reencrypt: the source KEK); none for registry changes. */
  @flags.string({
    description: 'KEK the act is on (reencrypt: the source KEK; none for approver, credential…)',
  })
  declare kek?: string

  /** Governed parameters, `name=value`. */
  @flags.array({ description: 'A governed parameter name=value (repeatable)' })
  declare param?: string[]

  /** Validity of the request. */
  @flags.string({ description: 'How long the request may be approved and used (default 24h)' })
  declare expiresIn?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print { "said", … } as JSON' })
  declare json?: boolean

  /** Validates, creates the request, prints its SAID. */
  @inject()
  async run(approvals: ApprovalService) {
    const params: Record<string, string> = {}
    for (const pair of this.param ?? []) {
      const at = pair.indexOf('=')
      if (at < 1) throw new E_GOVERNANCE_INPUT([`--param ${pair}: expected name=value`])
      const name = pair.slice(0, at)
      if (Object.hasOwn(params, name)) throw new E_GOVERNANCE_INPUT([`--param ${name} twice`])
      params[name] = pair.slice(at + 1)
    }
    const input = await createApprovalValidator.validate({
      action: this.action,
      kek: this.kek,
      params,
      expiresIn: this.expiresIn,
    })
    const status = await approvals.create({
      action: input.action,
      kek: input.kek,
      params: input.params ?? {},
      expiresInMs: input.expiresIn,
      requester: process.env.USER ?? 'cli',
    })
    const view = ApprovalTransformer.transform(status)
    this.print(view, [
      `Request ${view.said}: ${view.action} ${view.kek === REGISTRY_KEK ? JSON.stringify(view.params) : `of KEK "${view.kek}"`}, valid until ${view.expires}`,
      `Needs approval by: ${view.required.join(', ')}`,
      `Approvers sign it with: approval:sign ${view.said} --keystore <file>`,
    ])
  }
}
