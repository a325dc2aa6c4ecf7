/*
|--------------------------------------------------------------------------
| KMS manager
|--------------------------------------------------------------------------
|
| Maps a KEK name to its driver instance (config/kms.ts `keks`, else the
| default) and caches driver instances. Bound as a singleton by
| providers/kms_provider.ts; inject it with `@inject()`.
|
*/
import { E_KEK_NOT_FOUND, E_KMS_CONFIG } from '#app/errors'
import type { KekInfo, KmsDriver } from '#kms/contract'
import { validateKmsConfig, type KmsConfig, type KmsDriverFactory } from '#kms/define_config'
import { instrumentDriver } from '#kms/instrumented_driver'

/**
 * Resolves KMS drivers by name or by KEK.
 */
export class KmsManager {
  #cache = new Map<string, Promise<KmsDriver>>()
  /** Driver factories by name (a Map: a name is never an Object.prototype member). */
  #factories: Map<string, KmsDriverFactory>
  /** KEK name → driver name overrides. */
  #keks: Map<string, string>

  /**
   * The config, validated (E_CONFIG_INVALID for an unknown default or `keks`
   * driver). `drivers` and `keks` are kept as null-prototype copies, so that
   * reading `config.keks[name]` for a KEK named `constructor` or `__proto__`
   * finds nothing rather than an Object.prototype member; prefer
   * `driverNameFor()`.
   */
  config: KmsConfig<Record<string, KmsDriverFactory>>

  constructor(config: KmsConfig<Record<string, KmsDriverFactory>>) {
    validateKmsConfig(config)
    this.#factories = new Map(Object.entries(config.drivers))
    this.#keks = new Map(Object.entries(config.keks ?? {}).map(([k, d]) => [k, String(d)]))
    this.config = {
      default: config.default,
      drivers: Object.assign(Object.create(null), config.drivers),
      keks: Object.assign(Object.create(null), config.keks ?? {}),
    }
  }

  /**
   * A driver by name (default when omitted).
   */
  use(name?: string): Promise<KmsDriver> {
    const driverName = String(name ?? this.config.default)
    let driver = this.#cache.get(driverName)
    if (!driver) {
      const factory = this.#factories.get(driverName)
      if (!factory) throw new E_KMS_CONFIG([`unknown KMS driver "${driverName}"`])
      // Timed and error-counted for /metrics (app/kms/instrumented_driver.ts).
      driver = Promise.resolve(factory()).then((created) => instrumentDriver(created, driverName))
      this.#cache.set(driverName, driver)
    }
    return driver
  }

  /**
   * The driver that holds a KEK.
   */
  forKek(kekName: string): Promise<KmsDriver> {
    return this.use(this.driverNameFor(kekName))
  }

  /**
   * A KEK as its driver describes it (`readKey`); E_KEK_NOT_FOUND when the
   * KMS does not know it.
   */
  async requireKek(kekName: string): Promise<KekInfo> {
    const driver = await this.forKek(kekName)
    const info = await driver.readKey(kekName)
    if (!info) throw new E_KEK_NOT_FOUND([kekName])
    return info
  }

  /**
   * The name of the driver that holds a KEK (its `keks` entry, else the default).
   */
  driverNameFor(kekName: string): string {
    return this.#keks.get(kekName) ?? String(this.config.default)
  }

  /**
   * The drivers that hold KEKs: the default and every one `keks` names.
   */
  driverNames(): string[] {
    return [...new Set([String(this.config.default), ...[...this.#keks.values()].map(String)])]
  }

  /**
   * Closes every driver created so far (one whose creation failed has
   * nothing to close: its error went to the caller that asked for it).
   */
  async close() {
    const drivers = [...this.#cache.values()]
    this.#cache.clear()
    await Promise.all(
      drivers.map((d) =>
        d.then(
          (driver) => driver.close(),
          () => {}
        )
      )
    )
  }
}
