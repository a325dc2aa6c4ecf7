import { encrypt, encryptionVersion } from '#crypto/keyring'
import { decodeBase64Strict } from '#kms/transit_server/base64'
import { badRequest, engineCall } from '#kms/transit_server/http_error'
import { requireKey } from '#kms/transit_server/key_access'
import { intField, stringField } from '#kms/transit_server/params'
import type { TransitHandler } from '#kms/transit_server/types'

const ALLOWED_BITS = new Set([128, 256, 512])

/**
 * POST datakey/plaintext/:name and datakey/wrapped/:name — a fresh random
 * key, wrapped under the named key (and in plaintext for `plaintext`).
 * 400 on an unknown key (no upsert).
 */
export const datakey: TransitHandler = async ({ engine, params, body }) => {
  const kind = params.plaintext
  if (kind !== 'plaintext' && kind !== 'wrapped') {
    throw badRequest('invalid path; must be "plaintext" or "wrapped"')
  }
  const bits = intField(body, 'bits') ?? 256
  if (!ALLOWED_BITS.has(bits)) throw badRequest('invalid bits length; must be 128, 256 or 512')
  // Vault's pathDatakeyWrite decodes `context` and passes it on; a key that
  // is not derived ignores it (this server has no derived keys).
  const context = stringField(body, 'context')
  if (context && !decodeBase64Strict(context).ok) {
    throw badRequest('failed to base64-decode context')
  }
  if (stringField(body, 'nonce')) throw badRequest('provided nonce not allowed for this key')
  const keyVersion = intField(body, 'key_version')
  const ring = await requireKey(engine, params.name)

  const plaintext = engine.random(bits / 8)
  const ciphertext = engineCall(() => encrypt(ring, plaintext, engine.random, keyVersion))
  const data: Record<string, unknown> = {
    ciphertext,
    key_version: encryptionVersion(ring, keyVersion),
  }
  if (kind === 'plaintext') data.plaintext = plaintext.toString('base64')
  return { status: 200, data }
}
