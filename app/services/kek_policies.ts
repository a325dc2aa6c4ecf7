/*
|--------------------------------------------------------------------------
| KEK policies
|--------------------------------------------------------------------------
|
| The one place that answers "which KEKs does the app manage, and with
| which periods": built once from config/rewrap.ts (validated and resolved
| by its defineConfig) and bound as a singleton by providers/app_provider.ts.
| Inject it; tests swap it with their own list.
|
*/
import type { KekPeriods, KekPolicy } from '#app/rewrap_config'

export type { KekPeriods, KekPolicy } from '#app/rewrap_config'

/**
 * Managed KEKs and the periods of any KEK.
 */
export class KekPolicies {
  #managed: Map<string, KekPolicy>

  constructor(
    managed: readonly KekPolicy[],
    private defaults: KekPeriods
  ) {
    this.#managed = new Map(managed.map((policy) => [policy.name, policy]))
  }

  /**
   * The managed KEKs, in config order.
   */
  managed(): KekPolicy[] {
    return [...this.#managed.values()]
  }

  /**
   * Names of the managed KEKs, in config order.
   */
  managedNames(): string[] {
    return [...this.#managed.keys()]
  }

  /**
   * The periods of a KEK: its managed entry, else the defaults (`managed: false`).
   */
  policy(kekName: string): KekPolicy {
    return this.#managed.get(kekName) ?? { name: kekName, managed: false, ...this.defaults }
  }
}
