import { trimKeyring } from '#crypto/keyring_policy'
import { badRequest } from '#kms/transit_server/http_error'
import { changeKey, keyView } from '#kms/transit_server/key_access'
import { intField } from '#kms/transit_server/params'
import type { TransitHandler } from '#kms/transit_server/types'

/**
 * POST keys/:name/trim — deletes versions below min_available_version for
 * good (refused while min_encryption_version is 0); answers the key data.
 */
export const trimKey: TransitHandler = async ({ engine, params, body }) => {
  const minAvailableVersion = intField(body, 'min_available_version')
  if (!(await engine.store.load(params.name))) throw badRequest('invalid key name')
  if (minAvailableVersion === undefined) throw badRequest('missing min_available_version')
  const ring = await changeKey(
    engine,
    params.name,
    (current) => trimKeyring(current, minAvailableVersion),
    'invalid key name'
  )
  return { status: 200, data: keyView(ring) }
}
