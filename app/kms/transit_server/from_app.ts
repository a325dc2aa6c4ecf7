/*
|--------------------------------------------------------------------------
| Builds a transit server on the app's database and root key
|--------------------------------------------------------------------------
*/
import { randomBytes } from 'node:crypto'
import type { ApplicationService } from '@adonisjs/core/types'
import { decodeRootKey } from '#kms/drivers/local_factory'
import { LocalKeyringStore } from '#kms/local_keyring_store'
import { TransitServer } from '#kms/transit_server/transit_server'
import type { TransitServerOptions } from '#kms/transit_server/types'

/** Options of {@link createTransitServer}; the store comes from the app. */
export type AppTransitServerOptions = Omit<TransitServerOptions, 'store'> & {
  /** base64 of 32 bytes; KMS_ROOT_KEY (the local driver's) when omitted. */
  rootKey?: string
}

/**
 * A transit server whose keyrings live in the app's `kms_keys` table, sealed
 * under the root key (the same store the local driver uses).
 */
export async function createTransitServer(
  app: ApplicationService,
  options: AppTransitServerOptions
): Promise<TransitServer> {
  const db = await app.container.make('lucid.db')
  const { rootKey, ...serverOptions } = options
  const { default: env } = await import('#start/env')
  const key = decodeRootKey(rootKey ?? env.get('KMS_ROOT_KEY')?.release())
  const store = new LocalKeyringStore(db, key, options.random ?? randomBytes)
  return new TransitServer({ ...serverOptions, store })
}
