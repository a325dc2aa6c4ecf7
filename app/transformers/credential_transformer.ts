/*
|--------------------------------------------------------------------------
| Credential transformer
|--------------------------------------------------------------------------
|
| The API and CLI shape of a registered role credential: who granted which
| role to whom, when, whether it was revoked, and what the configured
| RoleVerifier says about it now. Public data only (SAIDs, AIDs, roles,
| dates, signatures).
|
*/
import type { RoleCredential } from '#app/governance/credentials'
import type { RoleVerdict, RoleVerifier } from '#app/governance/role_verifier'
import type { SignatureGroup } from '#app/governance/signatures'
import { iso } from '#transformers/run_transformer'

/** A credential row as stored. */
export type CredentialRow = {
  said: string
  issuer: string
  subject: string
  role: string
  document: string
  signatures: string
  revoked_at: Date | null
  revocation: string | null
  revocation_signatures: string | null
}

/** What the configured RoleVerifier answers about a credential now. */
export type CredentialVerification = {
  /** The verifier's name (`builtin`: the credentials registered here). */
  by: string
  /** False for the built-in verifier: not anchored in GLEIF's root of trust. */
  gleifAnchored: boolean
  valid: boolean
  /** The `E_` code and reason when not valid. */
  code?: string
  reason?: string
}

/** A registered credential as the registry shows it. */
export interface CredentialView {
  said: string
  issuer: string
  subject: string
  role: string
  issuedAt: string
  revokedAt: string | null
  verification?: CredentialVerification
}

/** One credential with its signed documents (`GET /credentials/:said`). */
export interface CredentialDetail extends CredentialView {
  credential: RoleCredential
  signature: SignatureGroup
  revocation: { revocation: unknown; signature: SignatureGroup } | null
}

/**
 * Shapes registered credentials for the API and the CLI.
 */
export class CredentialTransformer {
  /** The summary of a row, with the verifier's answer when given. */
  static transform(
    row: CredentialRow,
    verified?: { verifier: RoleVerifier; verdict: RoleVerdict }
  ): CredentialView {
    const credential = JSON.parse(row.document) as RoleCredential
    const view: CredentialView = {
      said: row.said,
      issuer: row.issuer,
      subject: row.subject,
      role: row.role,
      issuedAt: credential.a.dt,
      revokedAt: iso(row.revoked_at),
    }
    if (verified) {
      const { verifier, verdict } = verified
      view.verification = verdict.ok
        ? { by: verifier.name, gleifAnchored: verifier.gleifAnchored, valid: true }
        : {
            by: verifier.name,
            gleifAnchored: verifier.gleifAnchored,
            valid: false,
            code: verdict.code,
            reason: verdict.reason,
          }
    }
    return view
  }

  /** The summary plus the signed credential and revocation documents. */
  static detail(
    row: CredentialRow,
    verified: { verifier: RoleVerifier; verdict: RoleVerdict }
  ): CredentialDetail {
    return {
      ...CredentialTransformer.transform(row, verified),
      credential: JSON.parse(row.document),
      signature: JSON.parse(row.signatures),
      revocation:
        row.revocation && row.revocation_signatures
          ? {
              revocation: JSON.parse(row.revocation),
              signature: JSON.parse(row.revocation_signatures),
            }
          : null,
    }
  }
}
