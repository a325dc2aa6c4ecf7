import { writeFile } from 'node:fs/promises'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { ready } from '#app/governance/signify'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import { GovernanceCommand, random } from '#app/commands/governance_command'
import { createApprover } from '#services/approver_keys'

/**
 * `node ace approver:init --name <n> --keystore <file> [--json]`
 */
export default class ApproverInit extends GovernanceCommand {
  static commandName = 'approver:init'
  static description = 'Make an approver AID (keys stay local) and its signed inception event'
  static help = [
    'Makes a transferable, self-addressing KERI AID with an Ed25519 key and a pre-rotation',
    'commitment, seals the seeds in <file> (mode 0600; passphrase from REWRAP_KEYSTORE_PASSPHRASE',
    'or asked for) and writes the signed inception to <file>.icp.json. Nothing is sent anywhere:',
    'hand the .icp.json to approver:register or POST /approvers.',
    '{{ binaryName }} approver:init --name alice --keystore alice.keystore',
  ]
  static options: CommandOptions = { startApp: true }

  /** A label for people (not signed). */
  @flags.string({ flagName: 'name', description: 'Name of the approver' })
  declare approverName?: string

  /** Keystore file to create (must not exist). */
  @flags.string({ description: 'Keystore file to create (mode 0600)' })
  declare keystore?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print { "aid", "inception", … } as JSON' })
  declare json?: boolean

  /** Makes the keys, writes the keystore and the inception file. */
  async run() {
    const name = this.approverName?.trim()
    if (!name || name.length > 200)
      throw new E_GOVERNANCE_INPUT(['--name is required (≤ 200 characters)'])
    if (!this.keystore) throw new E_GOVERNANCE_INPUT(['--keystore <file> is required'])
    await ready()
    const passphrase = await this.passphrase()
    const made = createApprover(random)
    await this.writeKeystore(this.keystore, made.secrets, passphrase, true)
    const inceptionFile = `${this.keystore}.icp.json`
    const document = { name, aid: made.aid, inception: made.inception }
    await writeFile(inceptionFile, JSON.stringify(document, null, 2) + '\n', { flag: 'wx' })
    this.print({ ...document, keystore: this.keystore, inceptionFile }, [
      `Approver "${name}": AID ${made.aid}`,
      `Keystore: ${this.keystore} (mode 0600)`,
      `Signed inception: ${inceptionFile} (register it: approver:register ${inceptionFile})`,
    ])
  }
}
