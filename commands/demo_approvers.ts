import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { ready } from '#app/governance/signify'
import { E_CREDENTIAL_REVOKED, E_GOVERNANCE_INPUT } from '#app/errors'
import { GovernanceCommand, random } from '#app/commands/governance_command'
import type { SignedCredential } from '#app/governance/credentials'
import { createApprover, issueCredential } from '#services/approver_keys'
import { ApproverService } from '#services/approver_service'
import { CredentialService } from '#services/credential_service'
import { Clock } from '#services/clock'

/** The demo's approvers: one per role of the default policy. */
const DEMO_ROLES = ['cto', 'security_officer'] as const

/** One demo approver as the command reports it. */
type DemoApprover = {
  name: string
  aid: string
  keystore: string
  role?: string
  credential?: string
}

/**
 * `node ace demo:approvers --dir .data/demo-approvers [--json]`
 */
export default class DemoApprovers extends GovernanceCommand {
  static commandName = 'demo:approvers'
  static description =
    'Demo only: a role authority and two approvers (cto, security_officer) with keystores in --dir'
  static help = [
    'Creates once and registers a demo role authority and the approvers "cto" and "security_officer".',
    'Keystores go to --dir (0600, the folder 0700), sealed with REWRAP_KEYSTORE_PASSPHRASE.',
    'Issues and registers their role credentials. Running it again reuses what exists.',
    '`npm start` runs it. For real use, every approver makes their own keys (approver:init).',
    '{{ binaryName }} demo:approvers --dir .data/demo-approvers --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** Folder of the demo keystores. */
  @flags.string({ description: 'Folder for the demo keystores (created 0700)' })
  declare dir?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print { authority, approvers, created } as JSON' })
  declare json?: boolean

  /** Creates what is missing, registers everything (idempotent). */
  @inject()
  async run(approvers: ApproverService, credentials: CredentialService, clock: Clock) {
    if (!this.dir) throw new E_GOVERNANCE_INPUT(['--dir <folder> is required'])
    const dir = resolve(this.dir)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await chmod(dir, 0o700)
    await ready()
    const passphrase = await this.passphrase()
    const created: string[] = []

    const ensure = async (name: string, authority: boolean): Promise<DemoApprover> => {
      const keystore = join(dir, `${name}.keystore`)
      const icp = `${keystore}.icp.json`
      let document: { name: string; aid: string; inception: string }
      try {
        document = JSON.parse(await readFile(icp, 'utf8'))
      } catch {
        const made = createApprover(random)
        await this.writeKeystore(keystore, made.secrets, passphrase, true)
        document = { name: `demo-${name}`, aid: made.aid, inception: made.inception }
        await writeFile(icp, JSON.stringify(document, null, 2) + '\n', { mode: 0o600 })
        created.push(`approver ${name}`)
      }
      await approvers.register(
        { name: document.name, inception: document.inception, authority },
        { actor: 'demo:approvers' }
      )
      return { name, aid: document.aid, keystore }
    }

    const authority = await ensure('authority', true)
    let authoritySecrets: Awaited<ReturnType<typeof this.openKeystore>> | undefined
    const holders: DemoApprover[] = []
    for (const role of DEMO_ROLES) {
      const holder = await ensure(role, false)
      const file = join(dir, `${role}.credential.json`)
      let signed: SignedCredential
      try {
        signed = JSON.parse(await readFile(file, 'utf8'))
      } catch {
        authoritySecrets ??= await this.openKeystore(authority.keystore)
        const secrets = authoritySecrets
        const state = await approvers.keyState(authority.aid)
        signed = issueCredential(secrets, state, {
          subject: holder.aid,
          role,
          dt: clock.now().toISOString(),
        })
        await writeFile(file, JSON.stringify(signed, null, 2) + '\n', { mode: 0o600 })
        created.push(`credential ${role}`)
      }
      try {
        await credentials.register(signed, { actor: 'demo:approvers' })
      } catch (error) {
        // Revoked on purpose by someone trying the flow: report it, keep the rest.
        if (!(error instanceof E_CREDENTIAL_REVOKED)) throw error
        this.logger.warning(`the demo ${role} credential ${signed.credential.d} is revoked`)
      }
      holders.push({ ...holder, role, credential: signed.credential.d })
    }
    this.print({ dir, authority, approvers: holders, created }, [
      `Demo role authority ${authority.aid} (${authority.keystore})`,
      ...holders.map((h) => `Demo ${h.role}: ${h.aid} (${h.keystore}), credential ${h.credential}`),
      created.length > 0 ? `Created: ${created.join(', ')}` : 'Nothing new: all existed',
    ])
  }
}
