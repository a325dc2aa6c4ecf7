/*
|--------------------------------------------------------------------------
| RoleVerifier: does this AID hold this role?
|--------------------------------------------------------------------------
|
| The one question dual control asks about people: does `subject` hold
| `role`, by the role credential `credential`, valid and unrevoked at
| `at`? The built-in answer (app/services/stored_role_verifier.ts) checks
| the credentials this service registered, against the KELs it stored.
| It is vLEI-shaped, NOT anchored in GLEIF's root of trust. A real vLEI
| verification service (one that chains the credential to GLEIF through a
| Qualified vLEI Issuer) plugs in through config/governance.ts
| `roleVerifier` by implementing this contract.
|
*/
import type { Verdict } from './verdict.js'

/** What a role check asks. */
export type RoleCheck = {
  /** The approver AID. */
  subject: string
  /** The role it must hold (config/governance.ts `roles`). */
  role: string
  /** SAID of the role credential that grants it. */
  credential: string
  /** When the role must be held (the act's time). */
  at: Date
}

/** The answer: the credential and its issuer, or an `E_` code with a reason (no key material). */
export type RoleVerdict = Verdict<{ credential: string; issuer: string }>

/** A source of truth for role credentials. */
export interface RoleVerifier {
  /** Short name shown in `GET /rotations/status` (`builtin` for the built-in one). */
  readonly name: string
  /**
   * True only for a verifier that chains credentials to GLEIF's root of
   * trust (vLEI). The built-in verifier answers false.
   */
  readonly gleifAnchored: boolean
  /** Whether `check.subject` holds `check.role` by `check.credential` at `check.at`. */
  verify(check: RoleCheck): Promise<RoleVerdict>
}

/** config/governance.ts `roleVerifier`: a lazily imported class the container builds. */
export type RoleVerifierLoader = () => Promise<{ default: new (...args: any[]) => RoleVerifier }>
