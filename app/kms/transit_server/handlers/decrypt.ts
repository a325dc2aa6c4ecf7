import { decrypt as decryptWith, KeyringError } from '#crypto/keyring'
import { batchStatus, mapBatch, readBatchInput } from '#kms/transit_server/batch'
import {
  contextError,
  requireConsistentContext,
  unsupportedItemFeature,
} from '#kms/transit_server/handlers/item_checks'
import { badRequest } from '#kms/transit_server/http_error'
import { requireKey } from '#kms/transit_server/key_access'
import type { TransitHandler } from '#kms/transit_server/types'

interface DecryptResult {
  plaintext?: string
  reference: string
  error?: string
}

/**
 * POST decrypt/:name — `ciphertext` or `batch_input`; 400 on an unknown key.
 * A batch with a failed item answers 400 with every item's result.
 * `context` is ignored (non-derived keys), as in Vault's pathDecryptWrite.
 */
export const decrypt: TransitHandler = async ({ engine, params, body }) => {
  const { items, isBatch } = readBatchInput(body)
  if (!isBatch && !items[0].ciphertext) throw badRequest('missing ciphertext to decrypt')
  requireConsistentContext(items)
  const ring = await requireKey(engine, params.name)

  const results = await mapBatch(items, (item): DecryptResult => {
    const reference = item.reference
    if (!item.ciphertext) return { error: 'missing ciphertext to decrypt', reference }
    const invalidContext = contextError(item)
    if (invalidContext) return { error: invalidContext, reference }
    const unsupported = unsupportedItemFeature(item)
    if (unsupported) return { error: unsupported, reference }
    try {
      return { plaintext: decryptWith(ring, item.ciphertext).toString('base64'), reference }
    } catch (error) {
      if (error instanceof KeyringError) return { error: error.message, reference }
      throw error
    }
  })

  if (!isBatch) {
    const [result] = results
    if (result.error) throw badRequest(result.error)
    return { status: 200, data: { plaintext: result.plaintext } }
  }
  const { status, warnings } = batchStatus(body, results)
  return { status, data: { batch_results: results }, warnings }
}
