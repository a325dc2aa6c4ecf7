import { KEY_BYTES } from '#crypto/aead'
import { rotateKeyring } from '#crypto/keyring'
import { changeKey, keyView } from '#kms/transit_server/key_access'
import type { TransitHandler } from '#kms/transit_server/types'

/**
 * POST keys/:name/rotate — adds version latest+1; answers the key data.
 */
export const rotateKey: TransitHandler = async ({ engine, params }) => {
  const ring = await changeKey(
    engine,
    params.name,
    (current) => rotateKeyring(current, engine.random(KEY_BYTES), engine.now()),
    'key not found'
  )
  return { status: 200, data: keyView(ring) }
}
