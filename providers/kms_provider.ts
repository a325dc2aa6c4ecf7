import { configProvider } from '@adonisjs/core'
import type { ApplicationService } from '@adonisjs/core/types'
import { RuntimeException } from '@adonisjs/core/exceptions'
import { KmsManager } from '#kms/kms_manager'

/**
 * Binds the KMS manager as a singleton (config from config/kms.ts).
 */
export default class KmsProvider {
  constructor(protected app: ApplicationService) {}

  /**
   * Registers the binding.
   */
  #manager?: KmsManager

  register() {
    this.app.container.singleton(KmsManager, async () => {
      const kmsConfigProvider = this.app.config.get('kms')
      const config = await configProvider.resolve<any>(this.app, kmsConfigProvider)
      if (!config) {
        throw new RuntimeException(
          'Invalid "config/kms.ts" file. Use defineConfig from #kms/define_config'
        )
      }
      this.#manager = new KmsManager(config)
      return this.#manager
    })
  }

  /**
   * Closes KMS connections on shutdown.
   */
  async shutdown() {
    await this.#manager?.close()
  }
}
