/*
|--------------------------------------------------------------------------
| Evaluating an approval
|--------------------------------------------------------------------------
|
| A governed act may run when its request matches the act (action, KEK,
| governed parameters), is inside its validity window, and carries valid
| signatures from DISTINCT AIDs that together hold every required role —
| one AID fills at most one role — by unrevoked role credentials issued by
| a trusted role authority. Whether the request was already used is the
| database's job, not this function's.
|
*/
import { serialize } from './said.js'
import { verifyGroup, type SignatureGroup } from './signatures.js'
import { verifyApprovalRequest, sameParams, type ApprovalRequest } from './approval_request.js'
import {
  verifyRevocation,
  verifyRoleCredential,
  type SignedCredential,
  type SignedRevocation,
} from './credentials.js'
import { epochMs } from './shapes.js'
import type { KeyState } from './key_state.js'
import { fail, type Verdict } from './verdict.js'

/** An approver as the evaluation matched it: AID, the role it fills, the credential proving it. */
export type Approver = { aid: string; role: string; credential: string }

/** Everything `evaluateApproval` weighs. */
export type ApprovalInput = {
  /** The request document (its SAID is checked). */
  request: unknown
  /** Approvers' signature groups over the request. */
  signatures: readonly SignatureGroup[]
  /** Key states of approvers and role authorities, by AID. */
  keyStates: ReadonlyMap<string, KeyState>
  /** Role credentials on record. */
  credentials: readonly SignedCredential[]
  /** Credential revocations on record. */
  revocations: readonly SignedRevocation[]
  /** AIDs trusted to issue role credentials. */
  authorities: readonly string[]
  /** Roles the act requires (a role may appear twice: two distinct holders). */
  requiredRoles: readonly string[]
  /** The evaluation time. */
  now: Date
  /** The act about to run. */
  action: string
  kek: string
  params: Readonly<Record<string, string>>
}

/**
 * Which roles each AID holds by a valid, unrevoked credential from a trusted
 * authority; also the roles each AID held by a credential since revoked.
 */
export function rolesHeld(
  input: Pick<ApprovalInput, 'revocations' | 'keyStates' | 'credentials' | 'authorities' | 'now'>,
  roles: ReadonlySet<string>
) {
  const revoked = new Set<string>()
  for (const rev of input.revocations) {
    const verdict = verifyRevocation(rev, input.keyStates.get(rev?.revocation?.ii))
    if (verdict.ok) revoked.add(`${verdict.revocation.ii}/${verdict.revocation.i}`)
  }
  const held = new Map<string, Map<string, string>>()
  const revokedRoles = new Map<string, Set<string>>()
  for (const signed of input.credentials) {
    const issuer = signed?.credential?.i
    if (!input.authorities.includes(issuer)) continue
    const verdict = verifyRoleCredential(signed, input.keyStates.get(issuer))
    if (!verdict.ok) continue
    const { credential } = verdict
    if (!roles.has(credential.a.role) || epochMs(credential.a.dt) > input.now.getTime()) continue
    if (revoked.has(`${credential.i}/${credential.d}`)) {
      const lost = revokedRoles.get(credential.a.i) ?? new Set<string>()
      revokedRoles.set(credential.a.i, lost.add(credential.a.role))
      continue
    }
    const mine = held.get(credential.a.i) ?? new Map<string, string>()
    if (!mine.has(credential.a.role)) mine.set(credential.a.role, credential.d)
    held.set(credential.a.i, mine)
  }
  return { held, revokedRoles }
}

/**
 * Assigns distinct AIDs to the required role slots (maximum bipartite
 * matching, Kuhn's algorithm). Returns the slot → AID assignment.
 */
export function matchRoles(
  requiredRoles: readonly string[],
  held: ReadonlyMap<string, ReadonlyMap<string, string>>
): Array<string | undefined> {
  const slotOf = new Map<string, number>()
  const assigned: Array<string | undefined> = requiredRoles.map(() => undefined)
  const tryAid = (aid: string, seen: Set<number>): boolean => {
    for (const [slot, role] of requiredRoles.entries()) {
      if (!held.get(aid)?.has(role) || seen.has(slot)) continue
      seen.add(slot)
      const owner = assigned[slot]
      if (owner === undefined || tryAid(owner, seen)) {
        assigned[slot] = aid
        slotOf.set(aid, slot)
        return true
      }
    }
    return false
  }
  for (const aid of [...held.keys()].sort()) tryAid(aid, new Set())
  return assigned
}

/**
 * Decides whether `request` and its signatures authorize the act now.
 * `options.requireCurrentKeys` (default true) refuses signatures by
 * rotated-out keys; the audit verifier passes false to judge a past act.
 */
export function evaluateApproval(
  input: ApprovalInput,
  options: { requireCurrentKeys?: boolean } = {}
): Verdict<{ approvers: Approver[] }> {
  const checked = verifyApprovalRequest(input.request)
  if (!checked.ok) return checked
  const request: ApprovalRequest = checked.request
  if (
    request.action !== input.action ||
    request.kek !== input.kek ||
    !sameParams(request.params, input.params)
  ) {
    return fail(
      'E_APPROVAL_MISMATCH',
      `request ${request.d} is for another act or other parameters`
    )
  }
  const now = input.now.getTime()
  if (now < epochMs(request.created)) {
    return fail(
      'E_APPROVAL_MISMATCH',
      `request ${request.d} is not valid before ${request.created}`
    )
  }
  if (now >= epochMs(request.expires)) {
    return fail('E_APPROVAL_EXPIRED', `request ${request.d} expired at ${request.expires}`)
  }
  const signers = input.signatures.map((group) => group?.i)
  const twice = signers.find((aid, n) => signers.indexOf(aid) !== n)
  if (twice !== undefined)
    return fail('E_SAME_APPROVER', `${twice} signed request ${request.d} more than once`)
  const raw = serialize(request).raw
  for (const group of input.signatures) {
    const state = input.keyStates.get(group?.i)
    if (!state)
      return fail('E_APPROVER_UNKNOWN', `signer ${String(group?.i)} is not a registered approver`)
    const verdict = verifyGroup(raw, group, state, {
      requireCurrent: options.requireCurrentKeys ?? true,
    })
    if (!verdict.ok) return verdict
  }
  if (input.requiredRoles.length === 0)
    return fail('E_APPROVAL_INSUFFICIENT', 'no required roles configured')
  const { held, revokedRoles } = rolesHeld(input, new Set(input.requiredRoles))
  const signerHeld = new Map([...held].filter(([aid]) => signers.includes(aid)))
  const assigned = matchRoles(input.requiredRoles, signerHeld)
  const missing = input.requiredRoles.filter((_, slot) => assigned[slot] === undefined)
  if (missing.length > 0) {
    const revokedSigner = signers.find((aid) =>
      missing.some((role) => revokedRoles.get(aid)?.has(role))
    )
    if (revokedSigner) {
      return fail('E_CREDENTIAL_REVOKED', `the role credential of ${revokedSigner} is revoked`)
    }
    return { ...fail('E_APPROVAL_INSUFFICIENT', `missing role(s): ${missing.join(', ')}`), missing }
  }
  const approvers = input.requiredRoles.map((role, slot) => {
    const aid = assigned[slot] as string
    return { aid, role, credential: signerHeld.get(aid)!.get(role)! }
  })
  return { ok: true, approvers }
}
