/*
|--------------------------------------------------------------------------
| Governance: roles and dual control
|--------------------------------------------------------------------------
|
| Role credentials (`credential:issue --role`) may grant only these roles.
| Each governed act needs approvals from distinct approvers that together
| hold every role listed for it (docs/governance.md). `dualControl` and
| `roleVerifier` are described there too.
|
*/
import env from '#start/env'
import { defineConfig } from '#app/governance_config'

export type { GovernanceConfig, GovernedAct } from '#app/governance_config'

const governanceConfig = defineConfig({
  roles: ['cto', 'security_officer'],
  /** One CTO and one security officer, two different people, for every governed act. */
  defaultRequired: ['cto', 'security_officer'],
  /** Per-act overrides, e.g. `trim: ['cto', 'security_officer', 'security_officer']`. */
  required: {},
  /** DUAL_CONTROL=off (development only) lets governed acts run without approvals. */
  dualControl: env.get('DUAL_CONTROL', 'on') !== 'off',
  /**
   * Who answers "does this AID hold this role". The built-in verifier checks the
   * credentials registered here: vLEI-shaped, NOT anchored in GLEIF's root of
   * trust. A vLEI verification service plugs in here (docs/governance.md).
   */
  roleVerifier: () => import('#services/stored_role_verifier'),
})

export default governanceConfig
