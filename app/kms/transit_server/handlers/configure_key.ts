import { configureKeyring } from '#crypto/keyring_policy'
import { badRequest } from '#kms/transit_server/http_error'
import { changeKey, keyView } from '#kms/transit_server/key_access'
import { boolField, intField } from '#kms/transit_server/params'
import type { TransitHandler } from '#kms/transit_server/types'

/**
 * POST keys/:name/config — min_decryption_version, min_encryption_version,
 * deletion_allowed; answers the key data.
 */
export const configureKey: TransitHandler = async ({ engine, params, body }) => {
  const minDecryptionVersion = intField(body, 'min_decryption_version')
  const minEncryptionVersion = intField(body, 'min_encryption_version')
  const deletionAllowed = boolField(body, 'deletion_allowed')
  if (intField(body, 'auto_rotate_period')) {
    throw badRequest('auto_rotate_period is not supported by this server')
  }
  if (boolField(body, 'exportable') || boolField(body, 'allow_plaintext_backup')) {
    throw badRequest('exportable keys are not supported by this server')
  }
  if (minDecryptionVersion !== undefined && minDecryptionVersion < 0) {
    throw badRequest('min decryption version cannot be negative')
  }
  if (minEncryptionVersion !== undefined && minEncryptionVersion < 0) {
    throw badRequest('min encryption version cannot be negative')
  }
  const ring = await changeKey(
    engine,
    params.name,
    (current) =>
      configureKeyring(current, { minDecryptionVersion, minEncryptionVersion, deletionAllowed }),
    `no existing key named ${params.name} could be found`
  )
  const warnings =
    minDecryptionVersion === 0
      ? ['since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1']
      : []
  return { status: 200, data: keyView(ring), warnings }
}
