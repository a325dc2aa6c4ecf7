/*
|--------------------------------------------------------------------------
| Approval transformer
|--------------------------------------------------------------------------
|
| The API and `--json` shape of an approval request and where it stands
| (POST/GET /approvals, approval:request|sign|status). The request
| document is included whole: it is what an approver signs, and anyone may
| check its SAID. Public data only (documents, AIDs, roles, SAIDs).
|
*/
import type { ApprovalRequest } from '#app/governance/approval_request'
import type { ApprovalSigner, ApprovalStatus } from '#services/approval_service'

/** An approval request as the API shows it. */
export interface ApprovalView {
  said: string
  action: string
  kek: string
  params: Record<string, string>
  requester: string
  created: string
  expires: string
  state: ApprovalStatus['state']
  usedAt: string | null
  usedBy: string | null
  required: string[]
  held: string[]
  missing: string[]
  signers: ApprovalSigner[]
  approved: boolean
  problem: { code: string; reason: string } | null
  /** The signed document ({ d, t, action, kek, params, requester, created, expires, nonce }). */
  document: ApprovalRequest
}

/** Shapes approval statuses. */
export class ApprovalTransformer {
  /** One status. */
  static transform(status: ApprovalStatus): ApprovalView {
    const { request } = status
    return {
      said: status.said,
      action: request.action,
      kek: request.kek,
      params: request.params,
      requester: request.requester,
      created: request.created,
      expires: request.expires,
      state: status.state,
      usedAt: status.usedAt,
      usedBy: status.usedBy,
      required: status.required,
      held: status.held,
      missing: status.missing,
      signers: status.signers,
      approved: status.approved,
      problem: status.problem,
      document: request,
    }
  }

  /** Several. */
  static transformMany(statuses: ApprovalStatus[]): ApprovalView[] {
    return statuses.map((status) => ApprovalTransformer.transform(status))
  }
}
