import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { ready } from '#app/governance/signify'
import { decodeKeystore } from '#app/governance/keystore'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import { GovernanceCommand, random } from '#app/commands/governance_command'
import { rotateApprover } from '#services/approver_keys'
import { ApproverService } from '#services/approver_service'

/**
 * `node ace approver:rotate --keystore <file> [--json]`
 */
export default class ApproverRotate extends GovernanceCommand {
  static commandName = 'approver:rotate'
  static description = "Rotate an approver's keys to its committed next keys"
  static help = [
    'Makes a rotation event to the next keys the keystore committed to, commits to fresh next',
    'keys, and submits it. The keystore is replaced only once the rotation is accepted.',
    '{{ binaryName }} approver:rotate --keystore alice.keystore',
  ]
  static options: CommandOptions = { startApp: true }

  /** The approver's keystore. */
  @flags.string({ description: 'Keystore file of the approver' })
  declare keystore?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the approver after the rotation as JSON' })
  declare json?: boolean

  /** Opens the keystore, makes and submits the rotation, replaces the keystore. */
  @inject()
  async run(approvers: ApproverService) {
    if (!this.keystore) throw new E_GOVERNANCE_INPUT(['--keystore <file> is required'])
    await ready()
    const passphrase = await this.passphrase()
    const secrets = decodeKeystore(await this.readText(this.keystore, 'keystore'), passphrase)
    const state = await approvers.keyState(secrets.aid)
    const rotated = rotateApprover(secrets, state, random)
    const after = await this.replaceKeystore(this.keystore, rotated.secrets, passphrase, () =>
      approvers.rotate(rotated.rotation, { actor: process.env.USER ?? 'cli' })
    )
    this.print(after, [`Rotated ${after.aid} to sn ${after.sn}; keystore ${this.keystore} updated`])
  }
}
