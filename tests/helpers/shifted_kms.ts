/*
| A KMS manager whose local driver stamps new key versions with a test
| clock, so key ages (cryptoperiod, soak) follow the shifted time.
*/
import { randomBytes } from 'node:crypto'
import app from '@adonisjs/core/services/app'
import { LocalKmsDriver } from '#kms/drivers/local'
import { decodeRootKey } from '#kms/drivers/local_factory'
import { KmsManager } from '#kms/kms_manager'
import { LocalKeyringStore } from '#kms/local_keyring_store'
import type { Clock } from '#services/clock'

/** A local-only KMS manager on the run's keyring, versions stamped by `clock`. */
export async function shiftedKms(clock: Clock): Promise<KmsManager> {
  const lucid = await app.container.make('lucid.db')
  const store = new LocalKeyringStore(lucid, decodeRootKey(process.env.KMS_ROOT_KEY), randomBytes)
  const driver = new LocalKmsDriver({
    store,
    now: () => Math.floor(clock.now().getTime() / 1000),
  })
  return new KmsManager({ default: 'local', drivers: { local: () => driver } } as any)
}
