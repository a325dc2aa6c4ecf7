import { decrypt as decryptWith } from '#crypto/keyring'
import { batchStatus, mapBatch, readBatchInput, singleResult } from '#kms/transit_server/batch'
import { itemResult, requireConsistentContext } from '#kms/transit_server/handlers/item_checks'
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
    const ciphertext = item.ciphertext
    if (!ciphertext) return { error: 'missing ciphertext to decrypt', reference: item.reference }
    return itemResult(item, () => ({ plaintext: decryptWith(ring, ciphertext).toString('base64') }))
  })

  if (!isBatch) return { status: 200, data: { plaintext: singleResult(results).plaintext } }
  const { status, warnings } = batchStatus(body, results)
  return { status, data: { batch_results: results }, warnings }
}
