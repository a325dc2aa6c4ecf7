/*
|--------------------------------------------------------------------------
| Approval requests and signatures
|--------------------------------------------------------------------------
|
| Asks for a governed act with a request document addressed by its SAID
| (app/governance/approval_request.ts), takes approvers' signature groups
| over it and reports where it stands: roles filled, roles missing, who
| signed. Signing happens where the approver is (approval:sign opens the
| keystore locally): only the signature group reaches this service, and it
| is checked against the signer's CURRENT key state and an unrevoked role
| credential before it is stored. Each request and each signature is
| recorded in the audit trail in the same transaction. Whether an act may
| run is the ApprovalGate's decision.
|
*/
import { randomBytes } from 'node:crypto'
import { inject } from '@adonisjs/core'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { ready } from '#app/governance/signify'
import {
  E_APPROVAL_EXPIRED,
  E_APPROVAL_INSUFFICIENT,
  E_APPROVAL_USED,
  E_APPROVER_UNKNOWN,
  E_CREDENTIAL_REVOKED,
  E_GOVERNANCE_INPUT,
  E_SAME_APPROVER,
} from '#app/errors'
import type { GovernanceConfig } from '#app/governance_config'
import {
  ACT_OF,
  isRegistryAction,
  isRequestAction,
  paramsProblem,
  REGISTRY_KEK,
  REQUEST_ACTIONS,
  standingUntil,
  type RequestAction,
} from '#app/governance/acts'
import { createApprovalRequest, type ApprovalRequest } from '#app/governance/approval_request'
import { evaluateApproval, matchRoles, rolesHeld } from '#app/governance/approvals'
import { governanceError } from '#app/governance/errors'
import { serialize } from '#app/governance/said'
import { verifyGroup, type SignatureGroup } from '#app/governance/signatures'
import { AuditService } from '#services/audit_service'
import { Clock } from '#services/clock'
import {
  loadApproval,
  loadEvidence,
  type GovernanceEvidence,
  type StoredApproval,
} from '#services/governance_evidence'

/** Default validity of a request (`--expires-in`). */
export const DEFAULT_REQUEST_TTL_MS = 24 * 3_600_000

/** Longest validity of a request other than a standing policy. */
export const MAX_REQUEST_TTL_MS = 30 * 24 * 3_600_000

/** Where a request stands. */
export type ApprovalState = 'pending' | 'used' | 'expired'

/** A signer as the status shows it. */
export interface ApprovalSigner {
  aid: string
  name: string | null
  /** Sequence number of the establishment event whose keys signed. */
  sn: number
  /** Required roles this signer holds by a valid, unrevoked credential. */
  roles: string[]
  signedAt: string
}

/** A request and its approvals, as `approval:status` and `GET /approvals/:said` show it. */
export interface ApprovalStatus {
  said: string
  request: ApprovalRequest
  state: ApprovalState
  usedAt: string | null
  usedBy: string | null
  /** Roles the act requires (config/governance.ts). */
  required: string[]
  /** Required roles filled, each by a distinct signer. */
  held: string[]
  /** Required roles no signer fills yet. */
  missing: string[]
  signers: ApprovalSigner[]
  /** True when the act may run under this request now (pending and fully approved). */
  approved: boolean
  /** Why it may not (the gate's code and reason), null when approved. */
  problem: { code: string; reason: string } | null
}

/** Input of {@link ApprovalService.create}. */
export interface CreateApprovalInput {
  action: string
  /** The KEK acted on; none (or `-`) for the registry actions. */
  kek?: string
  params: Record<string, string>
  /** Validity (default 24 h, at most 30 days); a standing policy is valid until its `until`. */
  expiresInMs?: number
  requester: string
}

/**
 * Creates requests, takes signatures, reports status.
 */
@inject()
export class ApprovalService {
  /** Randomness for request nonces (swappable in tests). */
  random: (bytes: number) => Uint8Array = (bytes) => new Uint8Array(randomBytes(bytes))

  constructor(
    private clock: Clock,
    private audit: AuditService
  ) {}

  /** Roles config/governance.ts requires for an action. */
  requiredRoles(action: string): string[] {
    const config = app.config.get<GovernanceConfig>('governance')
    return isRequestAction(action) ? [...config.required[ACT_OF[action]]] : []
  }

  /**
   * Creates a request for one governed act (`E_GOVERNANCE_INPUT` for an
   * unknown action or parameters the action does not take) and records
   * `approval.requested`.
   */
  async create(input: CreateApprovalInput): Promise<ApprovalStatus> {
    await ready()
    const { action, params } = input
    if (!isRequestAction(action)) {
      throw new E_GOVERNANCE_INPUT([
        `unknown action "${action}" (valid: ${REQUEST_ACTIONS.join(', ')})`,
      ])
    }
    const kek = this.#kekOf(action, input.kek)
    const problem = paramsProblem(action, params)
    if (problem) throw new E_GOVERNANCE_INPUT([problem])
    if (action === 'reencrypt' && params.to === kek) {
      throw new E_GOVERNANCE_INPUT(['reencrypt: --param to names the same KEK'])
    }
    const now = this.clock.now()
    let ttlMs = input.expiresInMs ?? DEFAULT_REQUEST_TTL_MS
    if (action === 'standing-rotation') {
      ttlMs = standingUntil(params.until) - now.getTime()
      if (!(ttlMs > 0)) throw new E_GOVERNANCE_INPUT([`until ${params.until} is not in the future`])
    } else if (!(ttlMs >= 1000 && ttlMs <= MAX_REQUEST_TTL_MS)) {
      throw new E_GOVERNANCE_INPUT(['--expires-in must be between 1s and 30d'])
    }
    const request = createApprovalRequest({
      action,
      kek,
      params,
      requester: input.requester,
      now,
      ttlMs,
      random: this.random,
    })
    const text = new TextDecoder().decode(serialize(request).raw)
    await this.audit.withRecord(
      (trx) =>
        trx.rawQuery(
          `INSERT INTO approval_requests
             (said, action, kek, document, requester, created_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          [request.d, action, kek, text, request.requester, now, new Date(request.expires)]
        ),
      () => ({
        act: 'approval.requested',
        actor: request.requester,
        outcome: 'requested',
        kek,
        data: { request: request.d, action, params: request.params, expires: request.expires },
      })
    )
    return this.status(request.d)
  }

  /** The request's `kek`: the KEK acted on, or `-` for a registry change. */
  #kekOf(action: RequestAction, kek: string | undefined): string {
    if (isRegistryAction(action)) {
      if (kek !== undefined && kek !== REGISTRY_KEK) {
        throw new E_GOVERNANCE_INPUT([`"${action}" is not about a KEK (no --kek)`])
      }
      return REGISTRY_KEK
    }
    if (kek === undefined || kek === REGISTRY_KEK) {
      throw new E_GOVERNANCE_INPUT([`"${action}" needs --kek <name>`])
    }
    return kek
  }

  /** The request document (`E_APPROVAL_NOT_FOUND`). */
  async document(said: string): Promise<ApprovalRequest> {
    const stored = await loadApproval(db, said)
    return stored.request
  }

  /**
   * Stores one approver's signature group over the request, after checking
   * it: the request is unused and unexpired, the signer is registered and
   * signed with its CURRENT keys, has not signed this request before, and
   * holds a required role by an unrevoked credential. Records
   * `approval.signed` in the same transaction.
   */
  async sign(said: string, group: SignatureGroup, actor: string): Promise<ApprovalStatus> {
    await ready()
    if (!group || typeof group !== 'object' || typeof group.i !== 'string') {
      throw new E_GOVERNANCE_INPUT(['a signature group { i, s, d, sigs } is required'])
    }
    await db.transaction(async (trx) => {
      const stored = await loadApproval(trx, said, { lock: true })
      const now = this.clock.now()
      if (stored.usedAt) throw new E_APPROVAL_USED([said])
      if (now.getTime() >= Date.parse(stored.request.expires)) {
        throw new E_APPROVAL_EXPIRED([`request ${said} expired at ${stored.request.expires}`])
      }
      const evidence = await loadEvidence(trx)
      const state = evidence.keyStates.get(group.i)
      if (!state) throw new E_APPROVER_UNKNOWN([`signer ${group.i} is not a registered approver`])
      const verdict = verifyGroup(serialize(stored.request).raw, group, state, {
        requireCurrent: true,
      })
      if (!verdict.ok) throw governanceError(verdict)
      if (stored.signatures.some((s) => s.signer === group.i)) {
        throw new E_SAME_APPROVER([`${group.i} already signed request ${said}`])
      }
      const required = this.requiredRoles(stored.request.action)
      const { held, revokedRoles } = rolesHeld({ ...evidence, now }, new Set(required))
      const roles = [...(held.get(group.i)?.keys() ?? [])]
      if (roles.length === 0) {
        if (revokedRoles.get(group.i)?.size) {
          throw new E_CREDENTIAL_REVOKED([`the role credential of ${group.i} is revoked`])
        }
        throw new E_APPROVAL_INSUFFICIENT([
          `${group.i} holds none of the roles ${required.join(', ')} this act requires`,
        ])
      }
      await trx.rawQuery(
        `INSERT INTO approval_signatures (request_said, signer, sn, signature) VALUES (?, ?, ?, ?)`,
        [said, group.i, verdict.sn, JSON.stringify(group)]
      )
      await this.audit.append(trx, {
        act: 'approval.signed',
        actor,
        outcome: 'signed',
        kek: stored.request.kek,
        data: {
          request: said,
          action: stored.request.action,
          signer: group.i,
          roles,
          signature: group,
        },
      })
    })
    return this.status(said)
  }

  /** Where one request stands (`E_APPROVAL_NOT_FOUND`). */
  async status(said: string): Promise<ApprovalStatus> {
    await ready()
    return this.#status(await loadApproval(db, said), await loadEvidence(db))
  }

  /** Requests newest first, optionally in one state; at most `limit`. */
  async list(options: { state?: ApprovalState; limit?: number } = {}): Promise<ApprovalStatus[]> {
    await ready()
    const now = this.clock.now()
    const where =
      options.state === 'used'
        ? 'used_at IS NOT NULL'
        : options.state === 'expired'
          ? 'used_at IS NULL AND expires_at <= ?'
          : options.state === 'pending'
            ? 'used_at IS NULL AND expires_at > ?'
            : 'TRUE'
    const bindings = options.state === 'pending' || options.state === 'expired' ? [now] : []
    const { rows } = await db.rawQuery(
      `SELECT said FROM approval_requests WHERE ${where} ORDER BY created_at DESC, said LIMIT ?`,
      [...bindings, options.limit ?? 50]
    )
    const evidence = await loadEvidence(db)
    const out: ApprovalStatus[] = []
    for (const row of rows) out.push(this.#status(await loadApproval(db, row.said), evidence))
    return out
  }

  #status(stored: StoredApproval, evidence: GovernanceEvidence): ApprovalStatus {
    const now = this.clock.now()
    const { request } = stored
    const required = this.requiredRoles(request.action)
    const signerAids = new Set(stored.signatures.map((s) => s.signer))
    const { held } = rolesHeld({ ...evidence, now }, new Set(required))
    const signerHeld = new Map([...held].filter(([aid]) => signerAids.has(aid)))
    const assigned = matchRoles(required, signerHeld)
    const state: ApprovalState = stored.usedAt
      ? 'used'
      : now.getTime() >= Date.parse(request.expires)
        ? 'expired'
        : 'pending'
    const verdict = evaluateApproval({
      request,
      signatures: stored.signatures.map((s) => s.group),
      keyStates: evidence.keyStates,
      credentials: evidence.credentials,
      revocations: evidence.revocations,
      authorities: evidence.authorities,
      requiredRoles: required,
      now,
      action: request.action,
      kek: request.kek,
      params: request.params,
    })
    let problem = verdict.ok ? null : { code: verdict.code as string, reason: verdict.reason }
    if (state === 'used') problem = { code: 'E_APPROVAL_USED', reason: `used by ${stored.usedBy}` }
    return {
      said: stored.said,
      request,
      state,
      usedAt: stored.usedAt?.toISOString() ?? null,
      usedBy: stored.usedBy,
      required,
      held: required.filter((_, slot) => assigned[slot] !== undefined),
      missing: required.filter((_, slot) => assigned[slot] === undefined),
      signers: stored.signatures.map((s) => ({
        aid: s.signer,
        name: evidence.names.get(s.signer) ?? null,
        sn: s.sn,
        roles: [...(signerHeld.get(s.signer)?.keys() ?? [])],
        signedAt: s.signedAt.toISOString(),
      })),
      approved: verdict.ok && state === 'pending',
      problem,
    }
  }
}
