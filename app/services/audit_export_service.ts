/*
|--------------------------------------------------------------------------
| Audit export and verification from the database
|--------------------------------------------------------------------------
|
| Loads the records and key event logs and hands them to the pure checks
| (app/governance/audit_export): `audit:verify`, `audit:export`.
|
*/
import { inject } from '@adonisjs/core'
import { ready } from '#app/governance/signify'
import type { AuditChainVerdict } from '#app/governance/audit_chain'
import { buildAuditExport, verifyAuditExport, type AuditExport } from '#app/governance/audit_export'
import { AuditService } from '#services/audit_service'
import { Clock } from '#services/clock'
import { loadEvidence } from '#services/governance_evidence'
import db from '@adonisjs/lucid/services/db'

/**
 * Builds exports and verifies the stored chain.
 */
@inject()
export class AuditExportService {
  constructor(
    private audit: AuditService,
    private clock: Clock
  ) {}

  /**
   * The self-contained export of the whole log: the records, the service
   * KEL, and every approver's and role authority's KEL, credential and
   * revocation the approvals in the records are checked against.
   */
  async export(): Promise<AuditExport> {
    const { records, serviceKel } = await this.audit.all()
    const evidence = await loadEvidence(db)
    return buildAuditExport({
      exported: this.clock.now().toISOString(),
      serviceKel,
      records,
      authorities: evidence.authorities,
      keyEventLogs: evidence.keyEventLogs,
      credentials: evidence.credentials,
      revocations: evidence.revocations,
    })
  }

  /** Verifies the stored chain exactly as an auditor verifies its export. */
  async verify(): Promise<AuditChainVerdict> {
    await ready()
    return verifyAuditExport(await this.export())
  }
}
