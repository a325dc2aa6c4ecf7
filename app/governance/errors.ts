/*
|--------------------------------------------------------------------------
| From verdicts to exceptions
|--------------------------------------------------------------------------
|
| The pure checks return verdicts; services and commands throw. This maps a
| failed verdict to the `E_*` exception of the same code (app/errors.ts).
|
*/
import {
  E_APPROVAL_EXPIRED,
  E_APPROVAL_INSUFFICIENT,
  E_APPROVAL_MISMATCH,
  E_APPROVER_UNKNOWN,
  E_AUDIT_CHAIN_BROKEN,
  E_CREDENTIAL_INVALID,
  E_CREDENTIAL_REVOKED,
  E_KEY_EVENT_INVALID,
  E_SAID_INVALID,
  E_SAME_APPROVER,
  E_SIGNATURE_INVALID,
} from '../errors.js'
import type { Failure, GovernanceCode } from './verdict.js'

const BY_CODE: Record<GovernanceCode, new (args: [string]) => Error> = {
  E_SAID_INVALID,
  E_KEY_EVENT_INVALID,
  E_SIGNATURE_INVALID,
  E_CREDENTIAL_INVALID,
  E_CREDENTIAL_REVOKED,
  E_APPROVAL_INSUFFICIENT,
  E_APPROVAL_EXPIRED,
  E_APPROVAL_MISMATCH,
  E_APPROVER_UNKNOWN,
  E_SAME_APPROVER,
  E_AUDIT_CHAIN_BROKEN,
}

/** The exception for a failed verdict (same `E_` code, the verdict's reason as detail). */
export function governanceError(failure: Pick<Failure, 'code' | 'reason'>): Error {
  return new BY_CODE[failure.code]([failure.reason])
}
