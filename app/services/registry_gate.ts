/*
|--------------------------------------------------------------------------
| Registry gate: dual control over approvers and credentials
|--------------------------------------------------------------------------
|
| Registering an approver or a role authority, registering or revoking a
| role credential is a governed change once two approvers (non-authority
| AIDs holding unrevoked role credentials) exist: it then runs under an
| approval (actions `approver`, `credential`, `credential-revocation`),
| consumed by the ApprovalGate in the transaction of the change. Before
| that (bootstrap) a change passes without one and its audit record says
| so (`governance: "bootstrap"`). Changes are serialized by a transaction
| lock, so two bootstrap changes cannot race past the threshold.
|
*/
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import { REGISTRY_KEK, type RegistryAction } from '#app/governance/acts'
import type { AuditApprovals } from '#app/governance/audit_record'
import { ApprovalGate, type GovernedActRequest } from '#services/approval_gate'

/** Approvers holding roles from which registry changes are governed. */
export const GOVERNED_FROM = 2

/** One change of the approver / credential registry. */
export interface RegistryChange {
  action: RegistryAction
  /** The governed parameters (app/governance/acts.ts) binding the approval to the change. */
  params: Record<string, string>
  actor: string
  approval?: string
}

/** What the change's audit record carries. */
export interface RegistryGovernance {
  approvals: AuditApprovals | null
  /** `governance: "bootstrap"` when it passed before two approvers held roles. */
  data: Record<string, unknown>
}

const LOCK = `SELECT pg_advisory_xact_lock(hashtextextended('rewrap:governance-registry', 0))`

/**
 * Decides whether a registry change may run, and consumes its approval.
 */
@inject()
export class RegistryGate {
  constructor(private gate: ApprovalGate) {}

  /** Role holders now: registered non-authority AIDs with an unrevoked credential. */
  async holders(client: Pick<TransactionClientContract, 'rawQuery'> = db): Promise<number> {
    const { rows } = await client.rawQuery(
      `SELECT count(DISTINCT c.subject)::int AS n FROM credentials c
         JOIN approvers a ON a.aid = c.subject AND NOT a.authority
        WHERE c.revoked_at IS NULL`
    )
    return rows[0].n
  }

  /**
   * Before any work: in bootstrap without an approval, passes; otherwise
   * the ApprovalGate's check (E_APPROVAL_REQUIRED, or the warning with
   * dual control off).
   */
  async check(change: RegistryChange): Promise<void> {
    if (change.approval === undefined && (await this.holders()) < GOVERNED_FROM) return
    await this.gate.check(this.#act(change))
  }

  /** Serializes registry changes until `trx` ends (taken again by `consume`). */
  async lock(trx: TransactionClientContract): Promise<void> {
    await trx.rawQuery(LOCK)
  }

  /**
   * Inside the transaction of the change (before its audit record):
   * serializes registry changes, then consumes the approval or lets a
   * bootstrap change pass.
   */
  async consume(
    trx: TransactionClientContract,
    change: RegistryChange,
    usedBy: string
  ): Promise<RegistryGovernance> {
    await this.lock(trx)
    if (change.approval === undefined && (await this.holders(trx)) < GOVERNED_FROM) {
      return { approvals: null, data: { governance: 'bootstrap' } }
    }
    const approvals = await this.gate.consume(trx, this.#act(change), usedBy)
    return { approvals, data: approvals ? {} : { governance: 'dual control off' } }
  }

  #act(change: RegistryChange): GovernedActRequest {
    return { ...change, kek: REGISTRY_KEK }
  }
}
