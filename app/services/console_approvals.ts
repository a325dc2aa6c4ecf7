/*
|--------------------------------------------------------------------------
| Console approvals (the operator console's Approvals panel)
|--------------------------------------------------------------------------
|
| What the console shows under "Approvals": whether dual control is
| enforced, the standing policies (roles each governed act requires), the
| pending approval requests with the roles still missing and who signed.
| The panel renders whatever a `ConsoleApprovals` gives; the built-in one
| reports what exists today: the policies of config/governance.ts, dual
| control not enforced, no requests. An approvals service binds its own
| implementation in providers/app_provider.ts.
|
*/
import app from '@adonisjs/core/services/app'
import { GOVERNED_ACTS, type GovernanceConfig } from '#app/governance_config'

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
 * Today's approvals view: the configured policies, dual control off, no
 * pending requests (approval requests are not stored yet).
 */
export class ConfiguredApprovals extends ConsoleApprovals {
  constructor(private governance: GovernanceConfig | undefined = undefined) {
    super()
  }

  /** Policies from config/governance.ts; dual control not enforced; nothing pending. */
  async view(): Promise<ConsoleApprovalsView> {
    const config = this.governance ?? app.config.get<GovernanceConfig | undefined>('governance')
    const policies = config
      ? GOVERNED_ACTS.map((act) => ({ act, roles: [...config.required[act]] }))
      : []
    return { dualControl: false, policies, pending: [] }
  }
}
