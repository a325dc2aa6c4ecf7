/*
|--------------------------------------------------------------------------
| Audit records
|--------------------------------------------------------------------------
|
| Each audit record is ACDC-shaped and SAID-addressed, signed by the
| service AID, and chained to the one before:
|   { v, d, i: service AID, s: audit schema SAID,
|     a: { d, seq, prev, act, actor, approvals, outcome, dt, data } }
| `approvals` carries what a governed act ran under: the request document,
| the approvers' signature groups and the approvers as matched (AID, role,
| credential SAID), so an auditor re-checks them offline.
|
*/
import type { Signer } from './signify.js'
import { saidify, serialize, versionString } from './said.js'
import { signGroup, type SignatureGroup, type SigningEstablishment } from './signatures.js'
import { AUDIT_RECORD_SCHEMA_SAID } from './schemas.js'
import type { ApprovalRequest } from './approval_request.js'
import type { Approver } from './approvals.js'

/** The approval a recorded act ran under. */
export type AuditApprovals = {
  request: ApprovalRequest
  signatures: SignatureGroup[]
  approvers: Approver[]
}

/** The attributes of an audit record. */
export type AuditAttributes = {
  d: string
  seq: number
  prev: string
  act: string
  actor: string
  approvals: AuditApprovals | null
  outcome: string
  dt: string
  data: Record<string, unknown>
}

/** An audit record. */
export type AuditRecord = { v: string; d: string; i: string; s: string; a: AuditAttributes }

/** An audit record with the service's signature group. */
export type SignedAuditRecord = { record: AuditRecord; signature: SignatureGroup }

/**
 * Builds and signs the record that follows `previous` (or the first one):
 * seq = previous seq + 1, prev = previous SAID. Pure: `dt` is passed in.
 */
export function createAuditRecord(input: {
  service: SigningEstablishment
  signers: readonly Signer[]
  previous: AuditRecord | undefined
  act: string
  actor: string
  approvals: AuditApprovals | null
  outcome: string
  dt: string
  data: Record<string, unknown>
}): SignedAuditRecord {
  const a = saidify({
    d: '',
    seq: input.previous ? input.previous.a.seq + 1 : 0,
    prev: input.previous?.d ?? '',
    act: input.act,
    actor: input.actor,
    approvals: input.approvals,
    outcome: input.outcome,
    dt: input.dt,
    data: input.data,
  })
  const record = saidify({
    v: versionString('ACDC', 0),
    d: '',
    i: input.service.aid,
    s: AUDIT_RECORD_SCHEMA_SAID,
    a,
  }) as AuditRecord
  return { record, signature: signGroup(serialize(record).raw, input.signers, input.service) }
}
