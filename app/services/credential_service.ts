/*
|--------------------------------------------------------------------------
| Role credentials: registration and revocation
|--------------------------------------------------------------------------
|
| A role authority (an AID registered with `authority`) grants a role of
| config/governance.ts to a registered approver with a signed, ACDC-shaped
| credential; it revokes it with a signed `rev` record. The checks are the
| pure ones of app/governance/credentials.ts against key states replayed
| from the stored KELs. Documents are stored as the exact bytes verified.
| Whether a credential makes its subject a role holder is the configured
| RoleVerifier's answer (app/services/role_verifiers.ts): every view shows it.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import {
  E_APPROVER_NOT_AUTHORITY,
  E_APPROVER_UNKNOWN,
  E_CREDENTIAL_NOT_FOUND,
  E_CREDENTIAL_REVOKED,
  E_ROLE_UNKNOWN,
  E_SIGNATURE_INVALID,
} from '#app/errors'
import type { GovernanceConfig } from '#app/governance_config'
import {
  verifyRevocation,
  verifyRoleCredential,
  type RoleCredential,
  type SignedCredential,
  type SignedRevocation,
} from '#app/governance/credentials'
import { governanceError } from '#app/governance/errors'
import type { KeyState } from '#app/governance/key_state'
import type { RoleCheck, RoleVerdict } from '#app/governance/role_verifier'
import { serialize, type Sad } from '#app/governance/said'
import { ApproverService, type RegistryActor } from '#services/approver_service'
import { AuditService } from '#services/audit_service'
import { RegistryGate, type RegistryChange } from '#services/registry_gate'
import { Clock } from '#services/clock'
import { roleVerifier } from '#services/role_verifiers'
import {
  CredentialTransformer,
  type CredentialDetail,
  type CredentialRow,
  type CredentialView,
} from '#transformers/credential_transformer'

export type { CredentialView } from '#transformers/credential_transformer'

const COLUMNS = `said, issuer, subject, role, document, signatures, revoked_at, revocation,
  revocation_signatures`

function text(sad: Sad): string {
  return new TextDecoder().decode(serialize(sad).raw)
}

@inject()
export class CredentialService {
  constructor(
    private approvers: ApproverService,
    private clock: Clock,
    private audit: AuditService,
    private gate: RegistryGate
  ) {}

  /** Roles config/governance.ts allows. */
  get roles(): readonly string[] {
    return app.config.get<GovernanceConfig>('governance').roles
  }

  /**
   * Registers a role credential: the issuer is a registered role authority
   * whose CURRENT keys signed it, the SAIDs hold, the role is configured and
   * the subject is a registered approver. The same credential again is a
   * no-op; a revoked one stays revoked (`E_CREDENTIAL_REVOKED`). A new
   * credential is a governed change (`credential`, param `said`) once two
   * approvers hold roles; recorded `credential.register`.
   */
  async register(
    signed: SignedCredential,
    by: RegistryActor = {}
  ): Promise<CredentialView & { created: boolean }> {
    const issuer = await this.#authorityState(signed?.credential?.i)
    const verdict = verifyRoleCredential(signed, issuer)
    if (!verdict.ok) throw governanceError(verdict)
    const credential = verdict.credential
    const known = await this.#find(credential.d)
    if (known?.revoked_at)
      throw new E_CREDENTIAL_REVOKED([`credential ${credential.d} was revoked`])
    if (known) return { ...(await this.#view(known)), created: false }
    if (signed.signature.d !== issuer!.lastSaid) {
      throw new E_SIGNATURE_INVALID([
        `credential ${credential.d}: issuer signed with rotated-out keys (event ${signed.signature.s})`,
      ])
    }
    if (!this.roles.includes(credential.a.role)) {
      throw new E_ROLE_UNKNOWN([credential.a.role, this.roles.join(', ')])
    }
    await this.approvers.find(credential.a.i)
    const change: RegistryChange = {
      action: 'credential',
      params: { said: credential.d },
      actor: by.actor ?? 'cli',
      approval: by.approval,
    }
    await this.gate.check(change)
    const inserted = await db.transaction(async (trx) => {
      await this.gate.lock(trx)
      const exists = await trx.rawQuery(`SELECT said FROM credentials WHERE said = ?`, [
        credential.d,
      ])
      // Registered meanwhile: nothing changes, the approval stays unused.
      if (exists.rows.length > 0) return { rows: [] }
      const governed = await this.gate.consume(
        trx,
        change,
        `credential.register of ${credential.d}`
      )
      const added = await trx.rawQuery(
        `INSERT INTO credentials (said, issuer, subject, role, document, signatures)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING said`,
        [
          credential.d,
          credential.i,
          credential.a.i,
          credential.a.role,
          text(credential),
          JSON.stringify(signed.signature),
        ]
      )
      await this.audit.append(trx, {
        act: 'credential.register',
        actor: change.actor,
        outcome: 'done',
        data: {
          credential: credential.d,
          issuer: credential.i,
          subject: credential.a.i,
          role: credential.a.role,
          ...governed.data,
        },
        approvals: governed.approvals,
      })
      return added
    })
    const row = await this.#row(credential.d)
    if (row.revoked_at) throw new E_CREDENTIAL_REVOKED([`credential ${credential.d} was revoked`])
    return { ...(await this.#view(row)), created: inserted.rows.length > 0 }
  }

  /**
   * Records a revocation signed by the credential's issuer (still a role
   * authority). Revoking again with the same record is a no-op. A governed
   * change (`credential-revocation`, param `said`) once two approvers hold
   * roles; recorded `credential.revoke`.
   */
  async revoke(
    signed: SignedRevocation,
    by: RegistryActor = {}
  ): Promise<CredentialView & { revoked: boolean }> {
    const said = signed?.revocation?.i
    const row = await this.#row(typeof said === 'string' ? said : '')
    const issuer = await this.#authorityState(row.issuer)
    if (signed.revocation.ii !== row.issuer) {
      throw new E_SIGNATURE_INVALID([`revocation of ${row.said} is not by its issuer`])
    }
    const verdict = verifyRevocation(signed, issuer)
    if (!verdict.ok) throw governanceError(verdict)
    const revocation = text(verdict.revocation)
    const change: RegistryChange = {
      action: 'credential-revocation',
      params: { said: row.said },
      actor: by.actor ?? 'cli',
      approval: by.approval,
    }
    if (!row.revoked_at) await this.gate.check(change)
    const updated = await db.transaction(async (trx) => {
      const locked = await trx.rawQuery(
        `SELECT said FROM credentials WHERE said = ? AND revoked_at IS NULL FOR UPDATE`,
        [row.said]
      )
      if (locked.rows.length === 0) return locked
      const governed = await this.gate.consume(trx, change, `credential.revoke of ${row.said}`)
      const changed = await trx.rawQuery(
        `UPDATE credentials SET revoked_at = now(), revocation = ?, revocation_signatures = ?
         WHERE said = ? AND revoked_at IS NULL RETURNING said`,
        [revocation, JSON.stringify(signed.signature), row.said]
      )
      await this.audit.append(trx, {
        act: 'credential.revoke',
        actor: change.actor,
        outcome: 'done',
        data: {
          credential: row.said,
          revocation: verdict.revocation.d,
          issuer: row.issuer,
          subject: row.subject,
          role: row.role,
          ...governed.data,
        },
        approvals: governed.approvals,
      })
      return changed
    })
    const after = await this.#row(row.said)
    if (updated.rows.length === 0 && after.revocation !== revocation) {
      throw new E_CREDENTIAL_REVOKED([`credential ${row.said} was already revoked`])
    }
    return { ...(await this.#view(after)), revoked: updated.rows.length > 0 }
  }

  /** The stored credential document (`E_CREDENTIAL_NOT_FOUND`). */
  async document(said: string): Promise<RoleCredential> {
    const row = await this.#row(said)
    return JSON.parse(row.document) as RoleCredential
  }

  /** Credentials of one subject (or all), oldest first, each with the verifier's answer now. */
  async list(subject?: string): Promise<CredentialView[]> {
    const { rows } = await db.rawQuery<{ rows: CredentialRow[] }>(
      `SELECT ${COLUMNS} FROM credentials
       WHERE (?::text IS NULL OR subject = ?) ORDER BY created_at, said`,
      [subject ?? null, subject ?? null]
    )
    const views: CredentialView[] = []
    for (const row of rows) views.push(await this.#view(row))
    return views
  }

  /** One credential with its signed documents (`E_CREDENTIAL_NOT_FOUND`). */
  async show(said: string): Promise<CredentialDetail> {
    const row = await this.#row(said)
    return CredentialTransformer.detail(row, await this.#verified(row))
  }

  /**
   * Whether `check.subject` holds `check.role` by `check.credential` at
   * `check.at`, as the configured RoleVerifier answers.
   */
  async verifyRole(check: RoleCheck): Promise<RoleVerdict> {
    const verifier = await roleVerifier()
    return verifier.verify(check)
  }

  async #verified(row: CredentialRow) {
    const verifier = await roleVerifier()
    const verdict = await verifier.verify({
      subject: row.subject,
      role: row.role,
      credential: row.said,
      at: this.clock.now(),
    })
    return { verifier, verdict }
  }

  async #view(row: CredentialRow): Promise<CredentialView> {
    return CredentialTransformer.transform(row, await this.#verified(row))
  }

  async #row(said: string): Promise<CredentialRow> {
    const row = await this.#find(said)
    if (!row) throw new E_CREDENTIAL_NOT_FOUND([said])
    return row
  }

  async #find(said: string): Promise<CredentialRow | undefined> {
    const { rows } = await db.rawQuery<{ rows: CredentialRow[] }>(
      `SELECT ${COLUMNS} FROM credentials WHERE said = ?`,
      [said]
    )
    return rows[0]
  }

  async #authorityState(aid: unknown): Promise<KeyState | undefined> {
    if (typeof aid !== 'string') return undefined
    let found
    try {
      found = await this.approvers.find(aid)
    } catch (error) {
      if (error instanceof E_APPROVER_UNKNOWN) return undefined
      throw error
    }
    if (!found.authority) throw new E_APPROVER_NOT_AUTHORITY([aid])
    return this.approvers.keyState(aid)
  }
}
