/*
|--------------------------------------------------------------------------
| The approval gate of governed acts
|--------------------------------------------------------------------------
|
| Every governed act (rotate from the CLI, the API or the scheduler;
| retire, unretire, trim, reencrypt) passes here at its entry point, never
| inside a batch loop:
|   - `check(act)` before any work: with dual control on, an act without
|     an approval is refused (E_APPROVAL_REQUIRED); an approval given is
|     judged at once so a bad one fails before the KMS is touched;
|   - `consume(trx, act, usedBy)` in the transaction that writes the act's
|     audit record and starts it: the request row is locked, judged again
|     (evaluateApproval: matching act, unexpired, valid signatures under
|     the signers' CURRENT keys, distinct AIDs holding every required role
|     by unrevoked credentials) and marked used — so an approval runs one
|     act, and an act never runs without its record.
| A standing policy (the scheduler's `standing-rotation`) is judged the
| same way but not consumed: it is reused until its `until`.
| Refusals are recorded (`approval.refused`) in their own transaction.
| With dual control off, acts without an approval pass with a warning.
|
*/
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import logger from '@adonisjs/core/services/logger'
import db from '@adonisjs/lucid/services/db'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import { ready } from '#app/governance/signify'
import { E_APPROVAL_MISMATCH, E_APPROVAL_REQUIRED, E_APPROVAL_USED, errorCode } from '#app/errors'
import type { GovernanceConfig } from '#app/governance_config'
import {
  ACT_OF,
  durationMs,
  REGISTRY_KEK,
  standingUntil,
  type RequestAction,
} from '#app/governance/acts'
import { evaluateApproval } from '#app/governance/approvals'
import type { AuditApprovals } from '#app/governance/audit_record'
import { governanceError } from '#app/governance/errors'
import { AuditService } from '#services/audit_service'
import { Clock } from '#services/clock'
import { DualControl } from '#services/dual_control'
import { confirmApprovers } from '#services/role_verifiers'
import { loadApproval, loadEvidence, type Queryable } from '#services/governance_evidence'

/** One governed act about to run. */
export interface GovernedActRequest {
  action: Exclude<RequestAction, 'standing-rotation'>
  kek: string
  /** The governed parameters of the act (app/governance/acts.ts). */
  params: Record<string, string>
  /** SAID of the approval request it runs under. */
  approval?: string
  /** Who asks (token name, OS user, `scheduler`). */
  actor: string
  /** Scheduler only: the approval is a standing policy for this cryptoperiod (not consumed). */
  standing?: { cryptoperiodMs: number }
}

/** Codes a refused approval can carry (recorded as `approval.refused`). */
const REFUSAL_CODES = new Set([
  'E_APPROVAL_REQUIRED',
  'E_APPROVAL_INSUFFICIENT',
  'E_APPROVAL_EXPIRED',
  'E_APPROVAL_USED',
  'E_APPROVAL_MISMATCH',
  'E_APPROVAL_NOT_FOUND',
  'E_APPROVER_UNKNOWN',
  'E_CREDENTIAL_REVOKED',
  'E_SIGNATURE_INVALID',
  'E_SAME_APPROVER',
])

/**
 * Decides whether a governed act may run, and consumes its approval.
 */
@inject()
export class ApprovalGate {
  constructor(
    private clock: Clock,
    private audit: AuditService,
    private switch_: DualControl
  ) {}

  /** True unless DUAL_CONTROL=off. */
  get dualControl(): boolean {
    return this.switch_.enabled
  }

  /**
   * Before any work: refuses an act without an approval while dual control
   * is on (E_APPROVAL_REQUIRED), judges a given approval without consuming
   * it. Answers whether `consume` has an approval to take.
   */
  async check(act: GovernedActRequest): Promise<boolean> {
    if (act.approval === undefined) {
      if (!this.dualControl) {
        const what = act.kek === REGISTRY_KEK ? '' : ` of KEK "${act.kek}"`
        logger.warn(
          { act: act.action, kek: act.kek, actor: act.actor, params: act.params },
          `dual control is off: "${act.action}"${what} runs without approval`
        )
        return false
      }
      await this.#refused(act, new E_APPROVAL_REQUIRED([act.action]))
    }
    await this.#recording(act, () => this.#judge(db, act))
    return true
  }

  /**
   * Inside the transaction that starts the act and writes its audit
   * record: judges the approval again under a row lock and marks it used
   * by `usedBy` (not a standing policy). Answers what the audit record
   * carries, or null when the act runs without an approval (dual control off).
   */
  async consume(
    trx: TransactionClientContract,
    act: GovernedActRequest,
    usedBy: string
  ): Promise<AuditApprovals | null> {
    if (act.approval === undefined) {
      if (this.dualControl) await this.#refused(act, new E_APPROVAL_REQUIRED([act.action]))
      return null
    }
    return this.#recording(act, async () => {
      const approvals = await this.#judge(trx, act, { lock: true })
      if (!act.standing) {
        await trx.rawQuery(
          `UPDATE approval_requests SET used_at = ?, used_by = ? WHERE said = ? AND used_at IS NULL`,
          [this.clock.now(), usedBy, act.approval!]
        )
      }
      return approvals
    })
  }

  /**
   * The newest standing-rotation policy of `kek` that authorizes a
   * scheduled rotation now (its cryptoperiod that of the KEK), or the
   * reason there is none.
   */
  async standingPolicy(
    kek: string,
    cryptoperiodMs: number
  ): Promise<{ said: string } | { said: null; reason: string }> {
    const { rows } = await db.rawQuery(
      `SELECT said FROM approval_requests
        WHERE action = 'standing-rotation' AND kek = ? AND expires_at > ?
        ORDER BY created_at DESC, said`,
      [kek, this.clock.now()]
    )
    let reason = 'no standing-rotation policy'
    for (const row of rows as Array<{ said: string }>) {
      try {
        await this.#judge(db, {
          action: 'rotate',
          kek,
          params: {},
          approval: row.said,
          actor: 'scheduler',
          standing: { cryptoperiodMs },
        })
        return { said: row.said }
      } catch (error) {
        reason = `standing policy ${row.said}: ${errorCode(error)}`
      }
    }
    return { said: null, reason }
  }

  /** Evaluates the approval of `act` (throws the refusal); answers what the record carries. */
  async #judge(
    client: Queryable,
    act: GovernedActRequest,
    options: { lock?: boolean } = {}
  ): Promise<AuditApprovals> {
    await ready()
    const stored = await loadApproval(client, act.approval!, options)
    const { request } = stored
    if (stored.usedAt && !act.standing) throw new E_APPROVAL_USED([stored.said])
    // Judged at the time the act's audit record will carry (see AuditService.chainTime).
    const now = await this.audit.chainTime(client)
    let action: RequestAction = act.action
    let params = act.params
    if (act.standing) {
      action = 'standing-rotation'
      params = request.params
      const period = request.params?.cryptoperiod
      if (request.action === action && durationMs(period ?? '') !== act.standing.cryptoperiodMs) {
        throw new E_APPROVAL_MISMATCH([
          `standing policy ${stored.said} is for a cryptoperiod of ${period}, not this KEK's`,
        ])
      }
      if (request.action === action && now.getTime() >= standingUntil(request.params.until)) {
        throw new E_APPROVAL_MISMATCH([
          `standing policy ${stored.said} ended ${request.params.until}`,
        ])
      }
    }
    const evidence = await loadEvidence(client)
    const config = app.config.get<GovernanceConfig>('governance')
    const signatures = stored.signatures.map((s) => s.group)
    const verdict = evaluateApproval({
      request,
      signatures,
      keyStates: evidence.keyStates,
      credentials: evidence.credentials,
      revocations: evidence.revocations,
      authorities: evidence.authorities,
      requiredRoles: config.required[ACT_OF[action]],
      now,
      action,
      kek: act.kek,
      params,
    })
    if (!verdict.ok) throw governanceError(verdict)
    // The configured RoleVerifier (a vLEI service when one is plugged in) has the last word on roles.
    const roles = await confirmApprovers(verdict.approvers, now)
    if (!roles.ok) throw governanceError(roles)
    return { request, signatures, approvers: verdict.approvers }
  }

  /** Runs `work`; a refusal it throws is recorded, then rethrown. */
  async #recording<T>(act: GovernedActRequest, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (error) {
      if (REFUSAL_CODES.has(errorCode(error))) await this.#refused(act, error)
      throw error
    }
  }

  /** Records `approval.refused` in its own transaction (best effort), then throws `error`. */
  async #refused(act: GovernedActRequest, error: unknown): Promise<never> {
    const code = errorCode(error)
    try {
      await db.transaction((trx) =>
        this.audit.append(trx, {
          act: 'approval.refused',
          actor: act.actor,
          outcome: 'refused',
          kek: act.kek,
          data: { action: act.action, params: act.params, request: act.approval ?? null, code },
        })
      )
    } catch (recordError) {
      logger.error(
        { act: act.action, kek: act.kek, code, err: errorCode(recordError) },
        'the refusal of a governed act could not be recorded'
      )
    }
    logger.warn({ act: act.action, kek: act.kek, code }, 'governed act refused')
    throw error
  }
}
