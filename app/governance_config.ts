/*
|--------------------------------------------------------------------------
| config/governance.ts helper (the defineConfig pattern)
|--------------------------------------------------------------------------
|
| Validates the roles and the roles each governed act requires once, when
| the config file loads: a bad value stops the boot with E_CONFIG_INVALID
| naming the key. It names no implementation: the config file names the
| role verifier (a lazily imported class), so the services that read this
| config's types are never imported back from here.
|
*/
import { E_CONFIG_INVALID } from '#app/errors'
import type { RoleVerifierLoader } from '#app/governance/role_verifier'
import { ROLE_RE } from '#app/governance/shapes'

/** The acts dual control governs. */
export const GOVERNED_ACTS = [
  'rotate',
  'retire',
  'unretire',
  'trim',
  'reencrypt',
  'approver',
  'credential',
  'policy',
] as const

/** One of {@link GOVERNED_ACTS}. */
export type GovernedAct = (typeof GOVERNED_ACTS)[number]

/** Settings of config/governance.ts as written. */
export interface GovernanceConfigInput {
  /** Role names a role credential may grant (lower-case identifiers). */
  roles: string[]
  /** Roles (each filled by a distinct approver) an act requires; acts left out use `defaultRequired`. */
  required?: Partial<Record<GovernedAct, string[]>>
  /** Roles every act not named in `required` requires. */
  defaultRequired: string[]
  /**
   * Dual control: governed acts need approvals (default true). False is for
   * development only: acts run without approvals, with warnings.
   */
  dualControl?: boolean
  /**
   * Who answers "does this AID hold this role" (app/governance/role_verifier.ts):
   * the built-in verifier over the registered credentials is
   * `() => import('#services/stored_role_verifier')`.
   */
  roleVerifier: RoleVerifierLoader
}

/** Validated governance settings. */
export interface GovernanceConfig {
  roles: readonly string[]
  /** Required roles of every governed act. */
  required: Readonly<Record<GovernedAct, readonly string[]>>
  /** Whether governed acts need approvals. */
  dualControl: boolean
  /** Loads the role verifier class. */
  roleVerifier: RoleVerifierLoader
}

function invalid(key: string, detail: string): never {
  throw new E_CONFIG_INVALID(['config/governance.ts', `${key} ${detail}`])
}

function checkRoleList(list: unknown, roles: Set<string>, key: string): string[] {
  if (!Array.isArray(list) || list.length === 0) invalid(key, 'must list at least one role')
  for (const role of list) {
    if (!roles.has(role)) invalid(key, `names unknown role "${String(role)}"`)
  }
  return [...list]
}

/**
 * Validates config/governance.ts: roles are distinct lower-case identifiers,
 * every required role is one of them, every act requires at least one.
 */
export function defineConfig(input: GovernanceConfigInput): GovernanceConfig {
  if (!Array.isArray(input.roles) || input.roles.length === 0) {
    invalid('roles', 'must list at least one role')
  }
  for (const role of input.roles) {
    if (typeof role !== 'string' || !ROLE_RE.test(role)) {
      invalid('roles', `has a bad role name "${String(role)}" (lower-case identifier)`)
    }
  }
  const roles = new Set(input.roles)
  if (roles.size !== input.roles.length) invalid('roles', 'names a role twice')
  const fallback = checkRoleList(input.defaultRequired, roles, 'defaultRequired')
  const required = {} as Record<GovernedAct, string[]>
  for (const act of Object.keys(input.required ?? {})) {
    if (!(GOVERNED_ACTS as readonly string[]).includes(act)) {
      invalid(`required.${act}`, `is not a governed act (${GOVERNED_ACTS.join(', ')})`)
    }
  }
  for (const act of GOVERNED_ACTS) {
    const list = input.required?.[act]
    required[act] = list === undefined ? fallback : checkRoleList(list, roles, `required.${act}`)
  }
  if (input.dualControl !== undefined && typeof input.dualControl !== 'boolean') {
    invalid('dualControl', 'must be true or false')
  }
  if (typeof input.roleVerifier !== 'function') {
    invalid('roleVerifier', "must be a loader, e.g. () => import('#services/stored_role_verifier')")
  }
  return {
    roles: [...input.roles],
    required,
    dualControl: input.dualControl ?? true,
    roleVerifier: input.roleVerifier,
  }
}
