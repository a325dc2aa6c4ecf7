/*
|--------------------------------------------------------------------------
| Audit export files
|--------------------------------------------------------------------------
|
| The self-contained file an auditor verifies offline: the records as
| signed, the service's key event log and every other key event log,
| credential and revocation the records' approvals refer to. Pure: no
| database, no app boot (bin/verify_audit.ts imports only this folder).
|
*/
import { verifyAuditChain, type AuditChainVerdict } from './audit_chain.js'
import type { SignedAuditRecord } from './audit_record.js'
import type { SignedCredential, SignedRevocation } from './credentials.js'
import type { KelEntry } from './key_events.js'

/** Format tag of an export file. */
export const AUDIT_EXPORT_FORMAT = 'rewrap-audit-export/1'

/** An audit export. */
export type AuditExport = {
  format: typeof AUDIT_EXPORT_FORMAT
  /** When it was written (informative; not covered by any signature). */
  exported: string
  /** The service AID that signs the records. */
  serviceAid: string | null
  /** Trusted role authorities (empty until approvals exist). */
  authorities: string[]
  /** Records in sequence order from the first. */
  records: SignedAuditRecord[]
  /** Key event logs by AID: the service's, approvers', role authorities'. */
  keyEventLogs: Record<string, KelEntry[]>
  credentials: SignedCredential[]
  revocations: SignedRevocation[]
}

/** Builds an export document. */
export function buildAuditExport(input: {
  exported: string
  serviceKel: KelEntry[]
  records: SignedAuditRecord[]
  authorities?: string[]
  keyEventLogs?: Record<string, KelEntry[]>
  credentials?: SignedCredential[]
  revocations?: SignedRevocation[]
}): AuditExport {
  const serviceAid = (input.serviceKel[0]?.event.i as string | undefined) ?? null
  const keyEventLogs: Record<string, KelEntry[]> = { ...input.keyEventLogs }
  if (serviceAid) keyEventLogs[serviceAid] = input.serviceKel
  return {
    format: AUDIT_EXPORT_FORMAT,
    exported: input.exported,
    serviceAid,
    authorities: input.authorities ?? [],
    records: input.records.map(({ record, signature }) => ({ record, signature })),
    keyEventLogs,
    credentials: input.credentials ?? [],
    revocations: input.revocations ?? [],
  }
}

/**
 * Verifies an export (parsed JSON of unknown shape): its format, then the
 * chain with `verifyAuditChain` against the service AID it names.
 */
export function verifyAuditExport(file: unknown): AuditChainVerdict {
  const doc = file as Partial<AuditExport> | null
  if (
    !doc ||
    doc.format !== AUDIT_EXPORT_FORMAT ||
    !Array.isArray(doc.records) ||
    !doc.keyEventLogs ||
    typeof doc.keyEventLogs !== 'object'
  ) {
    return {
      ok: false,
      code: 'E_AUDIT_CHAIN_BROKEN',
      index: null,
      said: null,
      cause: 'E_SAID_INVALID',
      reason: `not an audit export (${AUDIT_EXPORT_FORMAT})`,
    }
  }
  return verifyAuditChain(
    doc.records,
    doc.keyEventLogs,
    Array.isArray(doc.credentials) ? doc.credentials : [],
    {
      authorities: Array.isArray(doc.authorities) ? doc.authorities : [],
      revocations: Array.isArray(doc.revocations) ? doc.revocations : [],
      serviceAid: typeof doc.serviceAid === 'string' ? doc.serviceAid : undefined,
    }
  )
}
