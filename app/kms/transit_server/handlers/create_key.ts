import { badRequest } from '#kms/transit_server/http_error'
import { KEY_TYPE, keyView, upsertKey } from '#kms/transit_server/key_access'
import { boolField, intField, stringField } from '#kms/transit_server/params'
import type { TransitHandler } from '#kms/transit_server/types'

/**
 * POST keys/:name — creates an aes256-gcm96 key (version 1). Like Vault, an
 * existing key is answered with its data and a warning.
 */
export const createKey: TransitHandler = async ({ engine, params, body }) => {
  const type = stringField(body, 'type') ?? KEY_TYPE
  if (type !== KEY_TYPE)
    throw badRequest(`key type not supported by this server (only ${KEY_TYPE})`)
  for (const field of [
    'derived',
    'convergent_encryption',
    'exportable',
    'allow_plaintext_backup',
  ]) {
    if (boolField(body, field)) throw badRequest(`${field} is not supported by this server`)
  }
  if (intField(body, 'auto_rotate_period')) {
    throw badRequest('auto_rotate_period is not supported by this server')
  }
  const { ring, created } = await upsertKey(engine, params.name)
  return {
    status: 200,
    data: keyView(ring),
    warnings: created ? [] : [`key ${params.name} already existed`],
  }
}
