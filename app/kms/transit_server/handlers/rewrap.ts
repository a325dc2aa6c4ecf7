import { encryptionVersion, rewrap as rewrapWith } from '#crypto/keyring'
import { mapBatch, readBatchInput, singleResult } from '#kms/transit_server/batch'
import { itemResult, requireConsistentContext } from '#kms/transit_server/handlers/item_checks'
import { badRequest } from '#kms/transit_server/http_error'
import { requireKey } from '#kms/transit_server/key_access'
import { intField } from '#kms/transit_server/params'
import type { TransitHandler } from '#kms/transit_server/types'

interface RewrapResult {
  ciphertext?: string
  key_version?: number
  reference: string
  error?: string
}

/**
 * POST rewrap/:name — decrypts and re-encrypts under `key_version` (default
 * latest) without returning plaintext. A batch always answers 200: each
 * failed item carries its own `error`. As in Vault's pathRewrapWrite, each
 * batch item is re-encrypted under its own `key_version` (0 / absent:
 * latest); the top-level `key_version` only applies to a single ciphertext.
 * `context` is ignored (non-derived keys).
 */
export const rewrap: TransitHandler = async ({ engine, params, body }) => {
  const { items, isBatch } = readBatchInput(body)
  if (!isBatch && !items[0].ciphertext) throw badRequest('missing ciphertext to decrypt')
  const singleVersion = intField(body, 'key_version')
  requireConsistentContext(items)
  const ring = await requireKey(engine, params.name)

  const results = await mapBatch(items, (item): RewrapResult => {
    const ciphertext = item.ciphertext
    if (!ciphertext) return { error: 'missing ciphertext to decrypt', reference: item.reference }
    const version = isBatch ? item.keyVersion : singleVersion
    return itemResult(item, () => ({
      ciphertext: rewrapWith(ring, ciphertext, engine.random, version),
      key_version: encryptionVersion(ring, version),
    }))
  })

  if (!isBatch) {
    const { ciphertext, key_version: keyVersion } = singleResult(results)
    return { status: 200, data: { ciphertext, key_version: keyVersion } }
  }
  return { status: 200, data: { batch_results: results } }
}
