/*
|--------------------------------------------------------------------------
| Verifying the audit chain
|--------------------------------------------------------------------------
|
| Offline and pure: from the records, the key event logs (service,
| approvers, role authorities) and the role credentials, check every
| record's SAIDs, sequence, link to the previous record, time order,
| the service's signature (against the key state the signature names;
| rotations are fine, but once a newer key set signed, older keys may not
| sign a later record) and each approval. The first broken record is named.
|
*/
import { serialize, verifySaid, parseVersion } from './said.js'
import { verifyGroup } from './signatures.js'
import { replayKel, type KelEntry } from './key_events.js'
import type { KeyState } from './key_state.js'
import { approvalBindingMismatch, consumesApproval } from './approval_binding.js'
import { evaluateApproval } from './approvals.js'
import type { SignedCredential, SignedRevocation } from './credentials.js'
import type { AuditAttributes, SignedAuditRecord } from './audit_record.js'
import { AUDIT_RECORD_SCHEMA_SAID } from './schemas.js'
import { epochMs, hasExactKeys, isDateTime, isSaid } from './shapes.js'
import type { GovernanceCode } from './verdict.js'

/** The outcome of `verifyAuditChain`. */
export type AuditChainVerdict =
  | { ok: true; count: number; head: string; serviceAid: string | undefined }
  | {
      ok: false
      code: 'E_AUDIT_CHAIN_BROKEN'
      /** Position of the first broken record (null: a key event log is bad). */
      index: number | null
      /** Its SAID as stored (null when unreadable). */
      said: string | null
      /** Underlying code (E_SAID_INVALID, E_SIGNATURE_INVALID, an approval code…). */
      cause: GovernanceCode
      reason: string
    }

/** Options: trusted role authorities, revocations, the expected service AID, the role policy. */
export type AuditChainOptions = {
  authorities: readonly string[]
  revocations?: readonly SignedRevocation[]
  serviceAid?: string
  /**
   * The roles a record's act required (empty or undefined: none). When
   * given, a record of such an act must carry approvals whose approvers
   * cover these roles; without it, the roles the record lists are taken
   * as required.
   */
  requiredRolesFor?: (attributes: AuditAttributes) => readonly string[] | undefined
}

const RECORD_FIELDS = ['v', 'd', 'i', 's', 'a']
const A_FIELDS = ['d', 'seq', 'prev', 'act', 'actor', 'approvals', 'outcome', 'dt', 'data']

function broken(
  index: number | null,
  said: unknown,
  cause: GovernanceCode,
  reason: string
): AuditChainVerdict {
  const at = index === null ? 'key event logs' : `record ${index}`
  return {
    ok: false,
    code: 'E_AUDIT_CHAIN_BROKEN',
    index,
    said: typeof said === 'string' ? said : null,
    cause,
    reason: `${at}: ${reason}`,
  }
}

/**
 * Verifies an audit chain (records in sequence order from the first) and
 * returns its length and head SAID, or the first broken record and why.
 * Deleting the LAST records is not detectable from the chain alone: compare
 * `count`/`head` with a checkpoint kept elsewhere.
 */
export function verifyAuditChain(
  records: readonly SignedAuditRecord[],
  keyEventLogs: Readonly<Record<string, readonly KelEntry[]>>,
  credentials: readonly SignedCredential[],
  options: AuditChainOptions
): AuditChainVerdict {
  const keyStates = new Map<string, KeyState>()
  for (const [aid, kel] of Object.entries(keyEventLogs)) {
    const replayed = replayKel(kel)
    if (!replayed.ok) return broken(null, null, replayed.code, `${aid}: ${replayed.reason}`)
    if (replayed.state.aid !== aid)
      return broken(null, null, 'E_KEY_EVENT_INVALID', `${aid}: KEL of another AID`)
    keyStates.set(aid, replayed.state)
  }
  const serviceAid = options.serviceAid ?? records[0]?.record?.i
  const service = serviceAid === undefined ? undefined : keyStates.get(serviceAid)
  let prevSaid = ''
  let prevDt = Number.NEGATIVE_INFINITY
  let prevSn = 0
  /** Request SAID → the record that consumed it. */
  const consumed = new Map<unknown, number>()
  for (const [index, entry] of records.entries()) {
    const record = entry?.record as unknown
    const said = (record as { d?: unknown } | null)?.d
    if (!hasExactKeys(record, RECORD_FIELDS) || !hasExactKeys(record.a, A_FIELDS)) {
      return broken(index, said, 'E_SAID_INVALID', 'not an audit record { v, d, i, s, a }')
    }
    const r = entry.record
    if (
      parseVersion(r.v)?.protocol !== 'ACDC' ||
      r.s !== AUDIT_RECORD_SCHEMA_SAID ||
      !isSaid(r.d)
    ) {
      return broken(index, said, 'E_SAID_INVALID', 'not an ACDC of the audit-record schema')
    }
    if (!verifySaid(r.a) || !verifySaid(r)) {
      return broken(index, said, 'E_SAID_INVALID', 'SAID does not match the content (edited)')
    }
    if (r.i !== serviceAid || !service) {
      return broken(
        index,
        said,
        'E_APPROVER_UNKNOWN',
        `issuer ${r.i} is not the service AID with a key event log`
      )
    }
    if (r.a.seq !== index)
      return broken(index, said, 'E_SAID_INVALID', `seq ${r.a.seq}, expected ${index}`)
    if (r.a.prev !== prevSaid) {
      return broken(index, said, 'E_SAID_INVALID', 'prev is not the SAID of the record before')
    }
    if (!isDateTime(r.a.dt) || epochMs(r.a.dt) < prevDt) {
      return broken(index, said, 'E_SAID_INVALID', 'dt missing or earlier than the record before')
    }
    const signed = verifyGroup(serialize(r).raw, entry.signature, service, {
      requireCurrent: false,
    })
    if (!signed.ok) return broken(index, said, signed.code, signed.reason)
    if (signed.sn < prevSn) {
      return broken(
        index,
        said,
        'E_SIGNATURE_INVALID',
        `signed with keys of event ${signed.sn}, rotated out before`
      )
    }
    const required = options.requiredRolesFor?.(r.a) ?? []
    if (required.length > 0) {
      const listed = Array.isArray(r.a.approvals?.approvers)
        ? r.a.approvals.approvers.map((a) => a?.role)
        : []
      const missing = missingRoles(required, listed)
      if (missing.length > 0) {
        return broken(
          index,
          said,
          'E_APPROVAL_INSUFFICIENT',
          `act ${r.a.act} lacks approval by ${missing.join(', ')}`
        )
      }
    }
    if (r.a.approvals !== null) {
      const approval = checkApprovals(entry, keyStates, credentials, options)
      if (approval) return broken(index, said, approval.code, approval.reason)
      // The approval is for this act (action, KEK, parameters), and consumed once.
      const request = r.a.approvals.request
      const mismatch = approvalBindingMismatch(r.a.act, r.a.data, request)
      if (mismatch) return broken(index, said, 'E_APPROVAL_MISMATCH', `approval: ${mismatch}`)
      if (consumesApproval(r.a.act, request)) {
        if (consumed.has(request.d)) {
          return broken(
            index,
            said,
            'E_APPROVAL_MISMATCH',
            `approval: request ${request.d} was already consumed by record ${consumed.get(request.d)}`
          )
        }
        consumed.set(request.d, index)
      }
    }
    prevSaid = r.d
    prevDt = epochMs(r.a.dt)
    prevSn = signed.sn
  }
  return { ok: true, count: records.length, head: prevSaid, serviceAid }
}

/** The required roles (a multiset) that `listed` does not cover. */
function missingRoles(required: readonly string[], listed: readonly unknown[]): string[] {
  const left = [...listed]
  return required.filter((role) => {
    const at = left.indexOf(role)
    if (at < 0) return true
    left.splice(at, 1)
    return false
  })
}

/** Re-evaluates the approval a record carries, at the record's time, with the credentials it names. */
function checkApprovals(
  entry: SignedAuditRecord,
  keyStates: ReadonlyMap<string, KeyState>,
  credentials: readonly SignedCredential[],
  options: AuditChainOptions
): { code: GovernanceCode; reason: string } | undefined {
  const { approvals, dt } = entry.record.a
  const approvers = Array.isArray(approvals?.approvers) ? approvals.approvers : []
  const request = approvals?.request
  if (approvers.length === 0 || !request || !Array.isArray(approvals.signatures)) {
    return {
      code: 'E_APPROVAL_INSUFFICIENT',
      reason: 'approvals without request, signatures or approvers',
    }
  }
  const named = new Set(approvers.map((a) => a?.credential))
  const at = epochMs(dt)
  const verdict = evaluateApproval(
    {
      request,
      signatures: approvals.signatures,
      keyStates,
      credentials: credentials.filter((c) => named.has(c?.credential?.d)),
      revocations: (options.revocations ?? []).filter(
        (r) => epochMs(String(r?.revocation?.dt)) <= at
      ),
      authorities: options.authorities,
      requiredRoles: approvers.map((a) => a?.role),
      now: new Date(at),
      action: request.action,
      kek: request.kek,
      params: request.params,
    },
    { requireCurrentKeys: false }
  )
  if (!verdict.ok) return { code: verdict.code, reason: `approval: ${verdict.reason}` }
  const key = (a: { aid: string; role: string; credential: string }) =>
    `${a.aid}/${a.role}/${a.credential}`
  const found = new Set(verdict.approvers.map(key))
  if (!approvers.every((a) => found.has(key(a)))) {
    return {
      code: 'E_APPROVAL_MISMATCH',
      reason: 'approval: recorded approvers differ from the signatures',
    }
  }
  return undefined
}
