/*
|--------------------------------------------------------------------------
| Verdicts of the governance checks
|--------------------------------------------------------------------------
|
| The pure checks never throw on bad input: they return a verdict with a
| stable `E_` code (the same codes as app/errors.ts) and a reason that names
| fields, SAIDs, AIDs and indexes only, never key material.
|
*/

/** Codes a governance check can fail with. */
export type GovernanceCode =
  | 'E_SAID_INVALID'
  | 'E_KEY_EVENT_INVALID'
  | 'E_SIGNATURE_INVALID'
  | 'E_CREDENTIAL_INVALID'
  | 'E_CREDENTIAL_REVOKED'
  | 'E_APPROVAL_INSUFFICIENT'
  | 'E_APPROVAL_EXPIRED'
  | 'E_APPROVAL_MISMATCH'
  | 'E_APPROVER_UNKNOWN'
  | 'E_SAME_APPROVER'
  | 'E_AUDIT_CHAIN_BROKEN'

/** A failed check; `missing` lists the roles no approver filled (E_APPROVAL_INSUFFICIENT). */
export type Failure = { ok: false; code: GovernanceCode; reason: string; missing?: string[] }

/** The outcome of a check: `{ ok: true, …value }` or a `Failure`. */
export type Verdict<T extends object = object> = ({ ok: true } & T) | Failure

/** Builds a failure. */
export function fail(code: GovernanceCode, reason: string): Failure {
  return { ok: false, code, reason }
}
