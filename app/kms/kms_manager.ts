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
import type { KmsDriver } from '#kms/contract'
import type { KmsConfig, KmsDriverFactory } from '#kms/define_config'
import { instrumentDriver } from '#kms/instrumented_driver'

/**
 * Resolves KMS drivers by name or by KEK.
 */
export class KmsManager {
  #cache = new Map<string, Promise<KmsDriver>>()

  constructor(public config: KmsConfig<Record<string, KmsDriverFactory>>) {}

  /**
   * A driver by name (default when omitted).
   */
  use(name?: string): Promise<KmsDriver> {
    const driverName = String(name ?? this.config.default)
    let driver = this.#cache.get(driverName)
    if (!driver) {
      const factory = this.config.drivers[driverName]
      if (!factory) throw new Error(`Unknown KMS driver "${driverName}"`)
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
   * The name of the driver that holds a KEK (config `keks`, else the default).
   */
  driverNameFor(kekName: string): string {
    return String(this.config.keks?.[kekName] ?? this.config.default)
  }

  /**
   * The drivers that hold KEKs: the default and every one `keks` names.
   */
  driverNames(): string[] {
    return [
      ...new Set([
        String(this.config.default),
        ...Object.values(this.config.keks ?? {}).map(String),
      ]),
    ]
  }

  /**
   * Closes every driver created so far.
   */
  async close() {
    const drivers = [...this.#cache.values()]
    this.#cache.clear()
    await Promise.all(drivers.map((d) => d.then((driver) => driver.close())))
  }
}
