import { randomBytes } from 'node:crypto'
import type { ApplicationService } from '@adonisjs/core/types'
import { E_KMS_CONFIG } from '#app/errors'
import { LocalKmsDriver } from '#kms/drivers/local'
import { LocalKeyringStore } from '#kms/local_keyring_store'
import type { LocalDriverConfig } from '#kms/driver_configs'

/**
 * Decodes KMS_ROOT_KEY (base64 of 32 bytes); a clear error when absent or malformed.
 */
export function decodeRootKey(value: string | undefined): Buffer {
  if (!value) throw new E_KMS_CONFIG(['KMS_ROOT_KEY is not set (npm start generates it into .env)'])
  const key = Buffer.from(value, 'base64')
  if (key.length !== 32) throw new E_KMS_CONFIG(['KMS_ROOT_KEY must be base64 of 32 bytes'])
  return key
}

/**
 * Builds the local driver on the app's database connection.
 */
export async function createLocalDriver(app: ApplicationService, config: LocalDriverConfig) {
  const db = await app.container.make('lucid.db')
  const store = new LocalKeyringStore(db, decodeRootKey(config.rootKey), randomBytes, config.table)
  return new LocalKmsDriver({ store })
}
