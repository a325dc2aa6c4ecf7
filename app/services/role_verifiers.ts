/*
|--------------------------------------------------------------------------
| The configured RoleVerifier
|--------------------------------------------------------------------------
|
| Resolves config/governance.ts `roleVerifier` (a lazily imported class)
| through the container, once per loader, and checks approvers with it.
| Every "does this AID hold this role" question of the app goes here, so
| a vLEI verification service configured there answers all of them.
|
*/
import app from '@adonisjs/core/services/app'
import type { GovernanceConfig } from '#app/governance_config'
import type { RoleVerifier, RoleVerifierLoader } from '#app/governance/role_verifier'
import type { Approver } from '#app/governance/approvals'
import type { Failure } from '#app/governance/verdict'

const resolved = new WeakMap<RoleVerifierLoader, Promise<RoleVerifier>>()

/** The role verifier config/governance.ts names (built once per loader). */
export function roleVerifier(): Promise<RoleVerifier> {
  const loader = app.config.get<GovernanceConfig>('governance').roleVerifier
  let verifier = resolved.get(loader)
  if (!verifier) {
    verifier = loader().then((module) => app.container.make(module.default))
    // A loader that failed is tried again next time.
    verifier.catch(() => resolved.delete(loader))
    resolved.set(loader, verifier)
  }
  return verifier
}

/**
 * Confirms with the configured verifier that every approver an approval
 * matched (`evaluateApproval`'s `approvers`) holds its role at `at`; the
 * first refusal is the answer.
 */
export async function confirmApprovers(
  approvers: readonly Approver[],
  at: Date
): Promise<{ ok: true } | Failure> {
  const verifier = await roleVerifier()
  for (const approver of approvers) {
    const verdict = await verifier.verify({
      subject: approver.aid,
      role: approver.role,
      credential: approver.credential,
      at,
    })
    if (!verdict.ok) return verdict
  }
  return { ok: true }
}
