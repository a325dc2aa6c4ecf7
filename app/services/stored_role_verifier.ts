/*
|--------------------------------------------------------------------------
| The built-in RoleVerifier: the credentials registered here
|--------------------------------------------------------------------------
|
| Answers "does this AID hold this role" from the `credentials` table: the
| credential is registered, grants that role to that subject, the role is
| one of config/governance.ts, its issuer is a registered role authority
| whose key state (at issuance) verifies the stored signature, it is dated
| no later than the check and not revoked by then. vLEI-shaped, NOT
| anchored in GLEIF's root of trust: the trusted authorities are whatever
| this deployment registered with `--authority` (docs/governance.md).
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { ready } from '#app/governance/signify'
import type { GovernanceConfig } from '#app/governance_config'
import { verifyRoleCredential, type SignedCredential } from '#app/governance/credentials'
import type { RoleCheck, RoleVerdict, RoleVerifier } from '#app/governance/role_verifier'
import { epochMs } from '#app/governance/shapes'
import { fail } from '#app/governance/verdict'
import { ApproverService } from '#services/approver_service'

type Row = {
  said: string
  issuer: string
  subject: string
  role: string
  document: string
  signatures: string
  revoked_at: Date | null
}

/**
 * The built-in verifier over the registered credentials and stored KELs.
 */
@inject()
export default class StoredRoleVerifier implements RoleVerifier {
  /** Shown in status. */
  readonly name = 'builtin'
  /** Not anchored in GLEIF's root of trust. */
  readonly gleifAnchored = false

  constructor(private approvers: ApproverService) {}

  /** See {@link RoleVerifier.verify}. */
  async verify(check: RoleCheck): Promise<RoleVerdict> {
    const { rows } = await db.rawQuery<{ rows: Row[] }>(
      `SELECT said, issuer, subject, role, document, signatures, revoked_at
         FROM credentials WHERE said = ?`,
      [check.credential]
    )
    const row = rows[0]
    const said = check.credential
    if (!row) return fail('E_CREDENTIAL_INVALID', `credential ${said} is not registered`)
    if (row.subject !== check.subject || row.role !== check.role) {
      return fail(
        'E_CREDENTIAL_INVALID',
        `credential ${said} grants ${row.role} to ${row.subject}, not ${check.role} to ${check.subject}`
      )
    }
    const roles = app.config.get<GovernanceConfig>('governance').roles
    if (!roles.includes(row.role)) {
      return fail('E_CREDENTIAL_INVALID', `credential ${said}: role ${row.role} is not configured`)
    }
    const issuer = await this.#authority(row.issuer)
    if (!issuer.ok) return issuer
    await ready()
    const signed: SignedCredential = {
      credential: JSON.parse(row.document),
      signature: JSON.parse(row.signatures),
    }
    const verdict = verifyRoleCredential(signed, await this.approvers.keyState(row.issuer))
    if (!verdict.ok) return verdict
    if (epochMs(verdict.credential.a.dt) > check.at.getTime()) {
      return fail(
        'E_CREDENTIAL_INVALID',
        `credential ${said} is not valid before ${verdict.credential.a.dt}`
      )
    }
    if (row.revoked_at && new Date(row.revoked_at).getTime() <= check.at.getTime()) {
      return fail('E_CREDENTIAL_REVOKED', `credential ${said} of ${row.subject} is revoked`)
    }
    const subject = await this.#registered(row.subject)
    if (!subject) return fail('E_APPROVER_UNKNOWN', `${row.subject} is not a registered approver`)
    return { ok: true, credential: said, issuer: row.issuer }
  }

  async #authority(aid: string): Promise<RoleVerdict> {
    const row = await this.#registered(aid)
    if (!row) return fail('E_APPROVER_UNKNOWN', `issuer ${aid} is not registered`)
    if (!row.authority) {
      return fail('E_CREDENTIAL_INVALID', `issuer ${aid} is not a role authority`)
    }
    return { ok: true, credential: '', issuer: aid }
  }

  async #registered(aid: string): Promise<{ authority: boolean } | undefined> {
    const { rows } = await db.rawQuery(`SELECT authority FROM approvers WHERE aid = ?`, [aid])
    return rows[0]
  }
}
