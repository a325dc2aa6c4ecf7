import { writeFile } from 'node:fs/promises'
import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { ready } from '#app/governance/signify'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import { GovernanceCommand } from '#app/commands/governance_command'
import { revokeCredential } from '#services/approver_keys'
import { ApproverService } from '#services/approver_service'
import { CredentialService } from '#services/credential_service'
import { Clock } from '#services/clock'
import { approvalFlagValidator } from '#validators/approval'

/**
 * `node ace credential:revoke <said> --keystore <authority> [--json]`
 */
export default class CredentialRevoke extends GovernanceCommand {
  static commandName = 'credential:revoke'
  static description = 'Revoke a role credential (signed by its issuing authority)'
  static help = [
    'Signs a revocation of the credential with the issuing authority keystore and records it.',
    'With --out it only writes the signed revocation, for POST /credentials/<said>/revocation.',
    'Once two approvers hold roles, recording it needs --approval <said> (approval:request',
    'credential-revocation --param said=<credential SAID>).',
    '{{ binaryName }} credential:revoke E… --keystore authority.keystore',
  ]
  static options: CommandOptions = { startApp: true }

  /** SAID of the credential. */
  @args.string({ description: 'SAID of the credential' })
  declare said: string

  /** The issuing authority's keystore. */
  @flags.string({ description: 'Keystore file of the issuing role authority' })
  declare keystore?: string

  /** Write the signed revocation here instead of recording it. */
  @flags.string({ description: 'Only write the signed revocation to this file (not recorded)' })
  declare out?: string

  /** SAID of the approved request, once the registry is governed. */
  @flags.string({ description: 'SAID of the approved request (approval:request, approval:sign)' })
  declare approval?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the revoked credential as JSON' })
  declare json?: boolean

  /** Signs and records the revocation. */
  @inject()
  async run(approvers: ApproverService, credentials: CredentialService, clock: Clock) {
    if (!this.keystore) throw new E_GOVERNANCE_INPUT(['--keystore <file> is required'])
    await ready()
    const credential = await credentials.document(this.said)
    const secrets = await this.openKeystore(this.keystore)
    const state = await approvers.keyState(secrets.aid)
    const signed = revokeCredential(secrets, state, credential, clock.now().toISOString())
    if (this.out) {
      await writeFile(this.out, JSON.stringify(signed, null, 2) + '\n', { flag: 'wx' }).catch(
        (error) => {
          if (error.code === 'EEXIST') {
            throw new E_GOVERNANCE_INPUT([`${this.out} exists; not overwritten`])
          }
          throw error
        }
      )
      const r = signed.revocation
      return this.print({ said: r.i, revocation: r.d, out: this.out }, [
        `Wrote the signed revocation of ${r.i} to ${this.out} (not recorded yet)`,
        `Record it: POST /credentials/${r.i}/revocation with the file as body`,
      ])
    }
    const { approval } = await approvalFlagValidator.validate({ approval: this.approval })
    const revoked = await credentials.revoke(signed, { approval, actor: process.env.USER ?? 'cli' })
    this.print(revoked, [
      `Revoked credential ${revoked.said} (role ${revoked.role} of ${revoked.subject})`,
    ])
  }
}
