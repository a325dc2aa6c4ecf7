/*
|--------------------------------------------------------------------------
| Which approval may stand behind which audit record
|--------------------------------------------------------------------------
|
| An audit record of a governed act carries the approval consumed for it.
| The signatures prove the approvers approved *a* request; this checks the
| request is for *this* act: its action, its KEK and the parameters the
| record shows (a service-key holder must not be able to attach the
| approval of one act to another), and that an approval consumed by one act
| is not shown again behind a second one. Pure (verifyAuditChain runs it
| offline); acts without a rule here are not bound.
|
*/
import { REGISTRY_KEK, type RequestAction } from './acts.js'

/** The request fields the binding reads. */
export interface BoundRequest {
  d?: unknown
  action: string
  kek: string
  params: Record<string, string>
}

type Rule = {
  /** Actions whose approval may start this act. */
  actions: readonly RequestAction[]
  /** Registry changes are about no KEK: the request names `-`. */
  registry: boolean
  /** Request parameter → the record's data field that must equal it (when both are given). */
  params: Record<string, string>
  /** The approval is consumed by the act (a standing policy is not). */
  consumes: (action: string) => boolean
}

const consumed = (action: string) => action !== 'standing-rotation'

const RULES: Record<string, Rule> = {
  'rotation.started': {
    actions: ['rotate', 'standing-rotation'],
    registry: false,
    params: { target_version: 'target_version' },
    consumes: consumed,
  },
  'reencrypt.started': {
    actions: ['reencrypt'],
    registry: false,
    params: { to: 'to' },
    consumes: consumed,
  },
  'kek.retire': { actions: ['retire'], registry: false, params: {}, consumes: consumed },
  'kek.unretire': { actions: ['unretire'], registry: false, params: {}, consumes: consumed },
  'kek.trim': { actions: ['trim'], registry: false, params: {}, consumes: consumed },
  'approver.register': {
    actions: ['approver'],
    registry: true,
    params: { aid: 'aid' },
    consumes: consumed,
  },
  'credential.register': {
    actions: ['credential'],
    registry: true,
    params: { said: 'credential' },
    consumes: consumed,
  },
  'credential.revoke': {
    actions: ['credential-revocation'],
    registry: true,
    params: { said: 'credential' },
    consumes: consumed,
  },
}

/**
 * Why `request` cannot be the approval behind a record of `act` with
 * `data`; null when it can (or when `act` has no rule).
 */
export function approvalBindingMismatch(
  act: string,
  data: Readonly<Record<string, unknown>> | null | undefined,
  request: BoundRequest
): string | null {
  const rule = RULES[act]
  if (!rule) return null
  if (!(rule.actions as readonly string[]).includes(request.action)) {
    return `the approval is for "${request.action}", the record is ${act}`
  }
  const kek = rule.registry ? REGISTRY_KEK : data?.kek
  if (request.kek !== kek) {
    return `the approval is for KEK "${request.kek}", the record's is "${String(kek)}"`
  }
  for (const [param, field] of Object.entries(rule.params)) {
    const wanted = request.params?.[param]
    const shown = data?.[field]
    if (wanted !== undefined && shown !== undefined && shown !== null && String(shown) !== wanted) {
      return `the approval's ${param} is ${wanted}, the record's ${field} is ${String(shown)}`
    }
  }
  return null
}

/** True when a record of `act` consumed the approval of `request` (each may be used once). */
export function consumesApproval(act: string, request: BoundRequest): boolean {
  return RULES[act]?.consumes(request.action) ?? false
}
