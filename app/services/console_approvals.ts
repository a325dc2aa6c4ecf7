/*
|--------------------------------------------------------------------------
| Console approvals (the operator console's Approvals panel)
|--------------------------------------------------------------------------
|
| What the console shows under "Approvals": whether dual control is
| enforced, the standing policies (roles each governed act requires), the
| pending approval requests with the roles still missing and who signed.
| The panel renders whatever a `ConsoleApprovals` gives (a container
| binding, providers/app_provider.ts); the built-in one reads the stored
| approval requests (ApprovalService) and the dual-control switch.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import { GOVERNED_ACTS, type GovernanceConfig } from '#app/governance_config'
import { ApprovalService } from '#services/approval_service'
import { DualControl } from '#services/dual_control'

/** Pending requests the panel lists (newest first). */
const PENDING_SHOWN = 20

/** One signature on a request: who, in which role. */
export interface ConsoleApprovalSigner {
  /** The approver's name (or AID when unnamed). */
  approver: string
  role: string
  signedAt: string | null
}

/** One pending approval request. */
export interface ConsolePendingApproval {
  id: string
  /** The governed act (rotate, retire, trim …). */
  action: string
  kek: string | null
  requestedBy: string | null
  createdAt: string | null
  expiresAt: string | null
  /** Roles not yet filled by a valid signature. */
  missingRoles: string[]
  signers: ConsoleApprovalSigner[]
}

/** The Approvals panel's data. */
export interface ConsoleApprovalsView {
  /** True when governed acts wait for approvals; false shows the warning banner. */
  dualControl: boolean
  /** Roles each governed act requires (config/governance.ts). */
  policies: Array<{ act: string; roles: string[] }>
  pending: ConsolePendingApproval[]
}

/**
 * Feeds the Approvals panel (a container binding: replace it to show real requests).
 */
export abstract class ConsoleApprovals {
  /** The panel's data now. */
  abstract view(): Promise<ConsoleApprovalsView>
}

/**
 * The approvals the service holds: dual control from the one switch, the
 * roles each governed act requires (config/governance.ts), and the pending
 * requests (newest first) with the roles still missing and who signed.
 */
@inject()
export class StoredApprovals extends ConsoleApprovals {
  constructor(
    private approvals: ApprovalService,
    private dualControl: DualControl
  ) {
    super()
  }

  /** The panel's data now. */
  async view(): Promise<ConsoleApprovalsView> {
    const config = app.config.get<GovernanceConfig>('governance')
    const policies = GOVERNED_ACTS.map((act) => ({ act, roles: [...config.required[act]] }))
    const pending = await this.approvals.list({ state: 'pending', limit: PENDING_SHOWN })
    return {
      dualControl: this.dualControl.enabled,
      policies,
      pending: pending.map((status) => ({
        id: status.said,
        action: status.request.action,
        kek: status.request.kek,
        requestedBy: status.request.requester,
        createdAt: status.request.created,
        expiresAt: status.request.expires,
        missingRoles: status.missing,
        signers: status.signers.map((signer) => ({
          approver: signer.name ?? signer.aid,
          role: signer.roles.join(', ') || 'no required role',
          signedAt: signer.signedAt,
        })),
      })),
    }
  }
}
