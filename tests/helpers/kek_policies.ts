/*
| Managed KEKs for a test: swaps the container's KekPolicies (restore it with
| `app.container.restore(KekPolicies)` or `restoreAll()`).
*/
import app from '@adonisjs/core/services/app'
import { resolveManagedKeks, type RewrapConfig } from '#app/rewrap_config'
import { KekPolicies } from '#services/kek_policies'

/** Makes `names` the managed KEKs (default periods) until the container is restored. */
export function manageKeks(...names: string[]): KekPolicies {
  const { defaults } = app.config.get<RewrapConfig>('rewrap').lifecycle
  const policies = new KekPolicies(resolveManagedKeks(names, defaults), defaults)
  app.container.swap(KekPolicies, () => policies)
  return policies
}
