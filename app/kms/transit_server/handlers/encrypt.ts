import { encrypt as encryptWith, encryptionVersion } from '#crypto/keyring'
import { decodeBase64Strict } from '#kms/transit_server/base64'
import { batchStatus, mapBatch, readBatchInput, singleResult } from '#kms/transit_server/batch'
import { badRequest } from '#kms/transit_server/http_error'
import {
  hasContext,
  itemResult,
  requireConsistentContext,
} from '#kms/transit_server/handlers/item_checks'
import { KEY_TYPE, upsertKey } from '#kms/transit_server/key_access'
import { stringField } from '#kms/transit_server/params'
import type { TransitHandler } from '#kms/transit_server/types'

interface EncryptResult {
  ciphertext?: string
  key_version?: number
  reference: string
  error?: string
}

/**
 * POST encrypt/:name — `plaintext` (base64) or `batch_input`. Creates an
 * unknown key, as Vault does (upsert). A batch with a failed item answers
 * 400 with every item's result in `data.batch_results`. As in Vault's
 * pathEncryptWrite, `context` is ignored on an existing (non-derived) key;
 * on an unknown key Vault would create a derived key, which this server
 * cannot do, so that is refused instead of creating a different key.
 */
export const encrypt: TransitHandler = async ({ engine, params, body }) => {
  const { items, isBatch } = readBatchInput(body)
  if (!isBatch && items[0].plaintext === undefined) throw badRequest('missing plaintext to encrypt')
  items.forEach((item, index) => {
    if (item.plaintext === undefined) {
      throw badRequest(
        `failed to parse batch input: '[${index}].plaintext' missing plaintext to encrypt`
      )
    }
  })
  const type = stringField(body, 'type') ?? KEY_TYPE
  if (type !== KEY_TYPE)
    throw badRequest(`key type not supported by this server (only ${KEY_TYPE})`)

  requireConsistentContext(items)
  if (hasContext(items[0]) && !(await engine.store.load(params.name))) {
    throw badRequest('derived keys (context) are not supported by this server')
  }

  const { ring } = await upsertKey(engine, params.name)
  const results = await mapBatch(items, (item): EncryptResult => {
    // Vault's order: plaintext, then context decoding, then the key's features.
    const decoded = decodeBase64Strict(item.plaintext ?? '')
    if (!decoded.ok) return { error: decoded.error, reference: item.reference }
    return itemResult(item, () => ({
      ciphertext: encryptWith(ring, decoded.bytes, engine.random, item.keyVersion),
      key_version: encryptionVersion(ring, item.keyVersion),
    }))
  })

  if (!isBatch) {
    const { ciphertext, key_version: keyVersion } = singleResult(results)
    return { status: 200, data: { ciphertext, key_version: keyVersion } }
  }
  const { status, warnings } = batchStatus(body, results)
  return { status, data: { batch_results: results }, warnings }
}
