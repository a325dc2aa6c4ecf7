/*
|--------------------------------------------------------------------------
| Role credentials (ACDC-shaped) and their revocation
|--------------------------------------------------------------------------
|
| A role authority grants a role to an approver AID with a credential
|   { v, d, i: issuer AID, s: schema SAID, a: { d, i: subject AID, role, dt } }
| whose `a` block and whole are SAID-addressed, signed by the issuer (a
| signature group naming the issuer's establishment event, so it stays
| verifiable after the issuer rotates). A revocation is a signed,
| SAID-addressed record shaped like a KERI TEL `rev` event:
|   { v, t: 'rev', d, i: credential SAID, s: '1', ii: issuer AID, dt }
| There is no registry (TEL) and no GLEIF anchoring: see docs/governance.md.
|
*/
import type { Signer } from './signify.js'
import { saidify, serialize, verifySaid, versionString, parseVersion } from './said.js'
import {
  signGroup,
  verifyGroup,
  type SignatureGroup,
  type SigningEstablishment,
} from './signatures.js'
import { ROLE_CREDENTIAL_SCHEMA_SAID } from './schemas.js'
import { hasExactKeys, isDateTime, isSaid, ROLE_RE } from './shapes.js'
import type { KeyState } from './key_state.js'
import { fail, type Verdict } from './verdict.js'

/** An ACDC-shaped role credential. */
export type RoleCredential = {
  v: string
  d: string
  i: string
  s: string
  a: { d: string; i: string; role: string; dt: string }
}

/** A credential with its issuer's signature group. */
export type SignedCredential = { credential: RoleCredential; signature: SignatureGroup }

/** A revocation record of a role credential. */
export type Revocation = {
  v: string
  t: 'rev'
  d: string
  i: string
  s: '1'
  ii: string
  dt: string
}

/** A revocation with its issuer's signature group. */
export type SignedRevocation = { revocation: Revocation; signature: SignatureGroup }

/**
 * Issues a role credential: builds and SAIDs it, and signs it with the
 * issuer's current signers under `issuer` (its establishment event).
 */
export function issueRoleCredential(input: {
  issuer: SigningEstablishment
  signers: readonly Signer[]
  subject: string
  role: string
  dt: string
}): SignedCredential {
  const a = saidify({ d: '', i: input.subject, role: input.role, dt: input.dt })
  const credential = saidify({
    v: versionString('ACDC', 0),
    d: '',
    i: input.issuer.aid,
    s: ROLE_CREDENTIAL_SCHEMA_SAID,
    a,
  }) as RoleCredential
  return {
    credential,
    signature: signGroup(serialize(credential).raw, input.signers, input.issuer),
  }
}

/**
 * Verifies a role credential: exact shape, ACDC v1 version string, the
 * role-credential schema, valid SAIDs of the `a` block and the whole, and
 * the issuer's signature against the issuer's key state at issuance (the
 * establishment event the signature names; later rotations are fine).
 */
export function verifyRoleCredential(
  signed: SignedCredential,
  issuerState: KeyState | undefined
): Verdict<{ credential: RoleCredential }> {
  const credential = signed?.credential as unknown
  if (
    !hasExactKeys(credential, ['v', 'd', 'i', 's', 'a']) ||
    !hasExactKeys(credential.a, ['d', 'i', 'role', 'dt'])
  ) {
    return fail(
      'E_CREDENTIAL_INVALID',
      'not a role credential { v, d, i, s, a: { d, i, role, dt } }'
    )
  }
  const c = credential as RoleCredential
  if (parseVersion(c.v)?.protocol !== 'ACDC' || c.s !== ROLE_CREDENTIAL_SCHEMA_SAID) {
    return fail('E_CREDENTIAL_INVALID', 'not an ACDC of the role-credential schema')
  }
  if (
    !isSaid(c.i) ||
    !isSaid(c.a.i) ||
    typeof c.a.role !== 'string' ||
    !ROLE_RE.test(c.a.role) ||
    !isDateTime(c.a.dt)
  ) {
    return fail('E_CREDENTIAL_INVALID', 'bad issuer, subject, role or dt')
  }
  if (!verifySaid(c.a) || !verifySaid(c)) {
    return fail('E_SAID_INVALID', `credential ${String(c.d)}: SAID does not match its content`)
  }
  if (!issuerState || issuerState.aid !== c.i) {
    return fail('E_APPROVER_UNKNOWN', `credential ${c.d}: issuer ${c.i} has no known key state`)
  }
  const signature = verifyGroup(serialize(c).raw, signed.signature, issuerState, {
    requireCurrent: false,
  })
  if (!signature.ok) return { ...signature, reason: `credential ${c.d}: ${signature.reason}` }
  return { ok: true, credential: c }
}

/** Revokes a credential: a SAID-addressed `rev` record signed by its issuer. */
export function revokeRoleCredential(input: {
  credential: RoleCredential
  issuer: SigningEstablishment
  signers: readonly Signer[]
  dt: string
}): SignedRevocation {
  const revocation = saidify({
    v: versionString('KERI', 0),
    t: 'rev',
    d: '',
    i: input.credential.d,
    s: '1',
    ii: input.credential.i,
    dt: input.dt,
  }) as Revocation
  return {
    revocation,
    signature: signGroup(serialize(revocation).raw, input.signers, input.issuer),
  }
}

/**
 * Verifies a revocation: exact shape, valid SAID, names a credential and
 * its issuer, and is signed by that issuer (any of its establishment events).
 */
export function verifyRevocation(
  signed: SignedRevocation,
  issuerState: KeyState | undefined
): Verdict<{ revocation: Revocation }> {
  const r = signed?.revocation as unknown
  if (!hasExactKeys(r, ['v', 't', 'd', 'i', 's', 'ii', 'dt']) || r.t !== 'rev' || r.s !== '1') {
    return fail('E_CREDENTIAL_INVALID', 'not a revocation { v, t: rev, d, i, s: 1, ii, dt }')
  }
  const rev = r as Revocation
  if (
    parseVersion(rev.v)?.protocol !== 'KERI' ||
    !isSaid(rev.i) ||
    !isSaid(rev.ii) ||
    !isDateTime(rev.dt)
  ) {
    return fail('E_CREDENTIAL_INVALID', 'bad revocation fields')
  }
  if (!verifySaid(rev))
    return fail('E_SAID_INVALID', `revocation ${String(rev.d)}: SAID does not match`)
  if (!issuerState || issuerState.aid !== rev.ii) {
    return fail(
      'E_APPROVER_UNKNOWN',
      `revocation ${rev.d}: issuer ${rev.ii} has no known key state`
    )
  }
  const signature = verifyGroup(serialize(rev).raw, signed.signature, issuerState, {
    requireCurrent: false,
  })
  if (!signature.ok) return { ...signature, reason: `revocation ${rev.d}: ${signature.reason}` }
  return { ok: true, revocation: rev }
}
