import { writeFile } from 'node:fs/promises'
import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { ready } from '#app/governance/signify'
import { E_GOVERNANCE_INPUT, E_ROLE_UNKNOWN } from '#app/errors'
import { GovernanceCommand } from '#app/commands/governance_command'
import { issueCredential } from '#services/approver_keys'
import { ApproverService } from '#services/approver_service'
import { CredentialService } from '#services/credential_service'
import { Clock } from '#services/clock'

/**
 * `node ace credential:issue --keystore <authority> --subject <aid> --role <role> --out <file>`
 */
export default class CredentialIssue extends GovernanceCommand {
  static commandName = 'credential:issue'
  static description = 'Issue a signed role credential (run by a role authority)'
  static help = [
    "Signs an ACDC-shaped role credential with the authority keystore's current keys and writes",
    'it to --out. It takes effect once registered (credential:register).',
    '{{ binaryName }} credential:issue --keystore authority.keystore --subject E… --role cto --out alice-cto.json',
  ]
  static options: CommandOptions = { startApp: true }

  /** The role authority's keystore. */
  @flags.string({ description: 'Keystore file of the role authority' })
  declare keystore?: string

  /** The approver AID the role is granted to. */
  @flags.string({ description: 'AID of the approver' })
  declare subject?: string

  /** The role (config/governance.ts). */
  @flags.string({ description: 'Role to grant' })
  declare role?: string

  /** Where to write the signed credential. */
  @flags.string({ description: 'File to write the signed credential to' })
  declare out?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print { "said", … } as JSON' })
  declare json?: boolean

  /** Signs the credential and writes it. */
  @inject()
  async run(approvers: ApproverService, credentials: CredentialService, clock: Clock) {
    if (!this.keystore || !this.subject || !this.role || !this.out) {
      throw new E_GOVERNANCE_INPUT(['--keystore, --subject, --role and --out are required'])
    }
    if (!credentials.roles.includes(this.role)) {
      throw new E_ROLE_UNKNOWN([this.role, credentials.roles.join(', ')])
    }
    await ready()
    await approvers.find(this.subject)
    const secrets = await this.openKeystore(this.keystore)
    const state = await approvers.keyState(secrets.aid)
    const signed = issueCredential(secrets, state, {
      subject: this.subject,
      role: this.role,
      dt: clock.now().toISOString(),
    })
    await writeFile(this.out, JSON.stringify(signed, null, 2) + '\n', { flag: 'wx' }).catch(
      (error) => {
        if (error.code === 'EEXIST')
          throw new E_GOVERNANCE_INPUT([`${this.out} exists; not overwritten`])
        throw error
      }
    )
    const c = signed.credential
    this.print({ said: c.d, issuer: c.i, subject: c.a.i, role: c.a.role, out: this.out }, [
      `Issued credential ${c.d}: role ${c.a.role} to ${c.a.i}, written to ${this.out}`,
      `Register it: credential:register ${this.out}`,
    ])
  }
}
