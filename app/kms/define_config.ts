/*
|--------------------------------------------------------------------------
| KMS config helpers (the @adonisjs/hash driver pattern)
|--------------------------------------------------------------------------
*/
import { configProvider } from '@adonisjs/core'
import { E_CONFIG_INVALID, E_KMS_CONFIG } from '#app/errors'
import { KEK_NAME_PATTERN } from '#validators/entry'
import type { ConfigProvider } from '@adonisjs/core/types'
import type { ApplicationService } from '@adonisjs/core/types'
import type { KmsDriver } from '#kms/contract'
import type { LocalDriverConfig } from '#kms/driver_configs'
import type { VaultDriverOptions } from '#kms/drivers/vault'
import { assertSecureEndpoint } from '#kms/vault_transport'
import type { AzureKeyVaultDriverOptions } from '#kms/drivers/azure_keyvault'
import { assertAwsKmsOptions, type AwsKmsDriverOptions } from '#kms/drivers/aws_kms_options'

/** Creates a driver instance once the app has booted. */
export type KmsDriverFactory = () => KmsDriver | Promise<KmsDriver>

/** Resolved KMS config. */
export interface KmsConfig<Drivers extends Record<string, KmsDriverFactory>> {
  /** Driver used for every KEK not listed in `keks`. */
  default: keyof Drivers
  drivers: Drivers
  /** Optional KEK name → driver name overrides. */
  keks?: Record<string, keyof Drivers>
}

/**
 * Checks that `default` and every `keks` entry name a configured driver
 * (own keys only: a KEK or driver called `constructor` is just a name) and
 * that `keks` keys are KEK names. Throws E_CONFIG_INVALID naming the key.
 */
export function validateKmsConfig(config: {
  default: unknown
  drivers: object
  keks?: object
}): void {
  const names = Object.keys(config.drivers)
  const known = (name: unknown) => typeof name === 'string' && Object.hasOwn(config.drivers, name)
  if (!known(config.default)) {
    throw new E_CONFIG_INVALID([
      'config/kms.ts',
      `default names no configured driver (got ${JSON.stringify(config.default)}; drivers: ${names.join(', ')})`,
    ])
  }
  for (const [kek, driver] of Object.entries(config.keks ?? {})) {
    if (!KEK_NAME_PATTERN.test(kek)) {
      throw new E_CONFIG_INVALID([
        'config/kms.ts',
        `keks: ${JSON.stringify(kek)} is not a KEK name`,
      ])
    }
    if (!known(driver)) {
      throw new E_CONFIG_INVALID([
        'config/kms.ts',
        `keks.${kek} names no configured driver (got ${JSON.stringify(driver)}; drivers: ${names.join(', ')})`,
      ])
    }
  }
}

/**
 * Defines config/kms.ts. Validated when the config file loads (a bad
 * reference stops the boot with E_CONFIG_INVALID); driver entries are
 * config providers resolved when the KMS manager is first made.
 */
export function defineConfig<
  Drivers extends Record<string, ConfigProvider<KmsDriverFactory>>,
>(config: {
  default: keyof Drivers
  drivers: Drivers
  keks?: Record<string, keyof Drivers>
}): ConfigProvider<KmsConfig<{ [K in keyof Drivers]: KmsDriverFactory }>> {
  validateKmsConfig(config)
  return configProvider.create(async (app) => {
    const drivers = {} as { [K in keyof Drivers]: KmsDriverFactory }
    for (const name of Object.keys(config.drivers) as Array<keyof Drivers>) {
      const resolved = await configProvider.resolve<KmsDriverFactory>(app, config.drivers[name])
      if (!resolved) {
        throw new E_CONFIG_INVALID([
          'config/kms.ts',
          `drivers.${String(name)} is not a driver (use drivers.local() / drivers.vault() / drivers.azureKeyVault())`,
        ])
      }
      drivers[name] = resolved
    }
    return { default: config.default, drivers, keks: config.keks }
  })
}

/**
 * Driver factories for config/kms.ts. A remote driver's module, and the SDK
 * it imports, is loaded when that driver is first used: a process on the
 * local KMS never loads the Vault, Azure or AWS clients.
 */
export const drivers = {
  /** The embedded local KMS (keyrings in Postgres, sealed under a root key). */
  local(config: LocalDriverConfig): ConfigProvider<KmsDriverFactory> {
    return configProvider.create(async (app: ApplicationService) => {
      const { createLocalDriver } = await import('#kms/drivers/local_factory')
      return () => createLocalDriver(app, config)
    })
  },
  /** HashiCorp Vault Transit through node-vault; refuses an insecure address at boot. */
  vault(config: VaultDriverOptions): ConfigProvider<KmsDriverFactory> {
    assertSecureEndpoint(config.endpoint, config.allowInsecureHttp)
    return configProvider.create(async () => async () => {
      const { VaultKmsDriver } = await import('#kms/drivers/vault')
      return new VaultKmsDriver(config)
    })
  },
  /**
   * Azure Key Vault / Managed HSM through @azure/keyvault-keys
   * (DefaultAzureCredential unless a static `token` is given). The URL is
   * checked when the driver is first used, so an unused entry never stops
   * the boot.
   */
  azureKeyVault(
    config: Omit<AzureKeyVaultDriverOptions, 'vaultUrl'> & { vaultUrl: string | undefined }
  ): ConfigProvider<KmsDriverFactory> {
    return configProvider.create(async () => async () => {
      if (!config.vaultUrl) throw new E_KMS_CONFIG(['AZURE_KEYVAULT_URL is not set'])
      const { AzureKeyVaultDriver } = await import('#kms/drivers/azure_keyvault')
      return new AzureKeyVaultDriver({ ...config, vaultUrl: config.vaultUrl })
    })
  },
  /**
   * AWS KMS through @aws-sdk/client-kms; region, credentials and endpoint
   * default to the SDK's own conventions (AWS_REGION, the default provider
   * chain, AWS_ENDPOINT_URL_KMS).
   */
  awsKms(config: AwsKmsDriverOptions = {}): ConfigProvider<KmsDriverFactory> {
    return configProvider.create(async () => {
      assertAwsKmsOptions(config)
      return async () => {
        const { AwsKmsDriver } = await import('#kms/drivers/aws_kms')
        return new AwsKmsDriver(config)
      }
    })
  },
}
