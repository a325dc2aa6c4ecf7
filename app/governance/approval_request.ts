/*
|--------------------------------------------------------------------------
| Approval requests
|--------------------------------------------------------------------------
|
| A governed act is asked for with a request document addressed by its
| SAID:
|   { d, t, action, kek, params, requester, created, expires, nonce }
| `params` holds only the parameters that matter for the act (target
| version, from/to KEK, cryptoperiod…), string values, keys sorted.
| Approvers sign the request's serialization (which carries its SAID) with
| a signature group under their current keys.
|
*/
import type { Signer } from './signify.js'
import { saidify, serialize, verifySaid } from './said.js'
import { signGroup, type SignatureGroup, type SigningEstablishment } from './signatures.js'
import { hasExactKeys, isDateTime } from './shapes.js'
import { fail, type Verdict } from './verdict.js'

/** Type tag of a request document. */
export const APPROVAL_REQUEST_TYPE = 'rewrap/approval-request/1'

/** Parameter names: lower-case identifiers. */
export const PARAM_RE = /^[a-z][a-z0-9_]{0,63}$/

/** A request for approval of one governed act. */
export type ApprovalRequest = {
  d: string
  t: typeof APPROVAL_REQUEST_TYPE
  action: string
  kek: string
  params: Record<string, string>
  requester: string
  created: string
  expires: string
  nonce: string
}

const FIELDS = ['d', 't', 'action', 'kek', 'params', 'requester', 'created', 'expires', 'nonce']

/** `params` with its keys sorted (the canonical form a request carries). */
export function canonicalParams(params: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(params)
      .sort()
      .map((key) => [key, params[key]])
  )
}

/** True when two parameter sets hold the same names and values. */
export function sameParams(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>
) {
  const keys = Object.keys(a)
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => Object.hasOwn(b, key) && b[key] === a[key])
  )
}

/**
 * Builds a request (pure: the clock and randomness are passed in): created
 * = `now`, expires = `now + ttlMs`, a 128-bit Base64url nonce.
 */
export function createApprovalRequest(input: {
  action: string
  kek: string
  params: Readonly<Record<string, string>>
  requester: string
  now: Date
  ttlMs: number
  random: (bytes: number) => Uint8Array
}): ApprovalRequest {
  for (const key of Object.keys(input.params)) {
    if (!PARAM_RE.test(key)) throw new TypeError(`invalid parameter name "${key}"`)
  }
  return saidify({
    d: '',
    t: APPROVAL_REQUEST_TYPE,
    action: input.action,
    kek: input.kek,
    params: canonicalParams(input.params),
    requester: input.requester,
    created: input.now.toISOString(),
    expires: new Date(input.now.getTime() + input.ttlMs).toISOString(),
    nonce: Buffer.from(input.random(16)).toString('base64url'),
  }) as ApprovalRequest
}

/**
 * Checks a request's shape and SAID (`E_APPROVAL_MISMATCH` when the
 * document is not the one its SAID addresses).
 */
export function verifyApprovalRequest(request: unknown): Verdict<{ request: ApprovalRequest }> {
  if (!hasExactKeys(request, FIELDS) || request.t !== APPROVAL_REQUEST_TYPE) {
    return fail('E_APPROVAL_MISMATCH', 'not an approval request document')
  }
  const r = request as ApprovalRequest
  const params = r.params as unknown
  const paramsOk =
    !!params &&
    typeof params === 'object' &&
    !Array.isArray(params) &&
    Object.entries(params).every(([key, value]) => PARAM_RE.test(key) && typeof value === 'string')
  const fieldsOk = [r.action, r.kek, r.requester, r.nonce].every(
    (v) => typeof v === 'string' && v.length > 0
  )
  if (!paramsOk || !fieldsOk || !isDateTime(r.created) || !isDateTime(r.expires)) {
    return fail('E_APPROVAL_MISMATCH', 'approval request has malformed fields')
  }
  if (!verifySaid(r)) return fail('E_APPROVAL_MISMATCH', 'approval request does not match its SAID')
  return { ok: true, request: r }
}

/** An approver's signature group over a request, under its current establishment event. */
export function signApproval(
  request: ApprovalRequest,
  signers: readonly Signer[],
  est: SigningEstablishment
): SignatureGroup {
  return signGroup(serialize(request).raw, signers, est)
}
