/*
|--------------------------------------------------------------------------
| Per-item checks shared by encrypt, decrypt and rewrap
|--------------------------------------------------------------------------
|
| As Vault's path_encrypt.go / path_decrypt.go / path_rewrap.go do them:
| `context` must be set in every item or in none (400 for the whole
| request), is base64-decoded per item (the item fails with Go's error),
| and is otherwise ignored for a key that is not derived — this server
| only has non-derived keys (keysutil.Policy.GetKey uses the raw key then).
| `itemResult` runs them, then the item's work, in that order for each.
|
*/
import { KeyringError } from '#crypto/keyring'
import { decodeBase64Strict } from '#kms/transit_server/base64'
import type { BatchItem } from '#kms/transit_server/batch'
import { badRequest } from '#kms/transit_server/http_error'

/** Whether an item carries a context (Vault: `len(item.Context) != 0`). */
export function hasContext(item: BatchItem): boolean {
  return (item.context ?? '') !== ''
}

/**
 * 400 unless every item has a context or none has (the check in each of
 * Vault's pathEncryptWrite, pathDecryptWrite and pathRewrapWrite).
 */
export function requireConsistentContext(items: BatchItem[]): void {
  const contextSet = hasContext(items[0])
  if (items.some((item) => hasContext(item) !== contextSet)) {
    throw badRequest('context should be set either in all the request blocks or in none')
  }
}

/**
 * The item's error for a context that is not valid base64 (Go's message),
 * null otherwise; a valid context is then ignored (non-derived key).
 */
export function contextError(item: BatchItem): string | null {
  if (!hasContext(item)) return null
  const decoded = decodeBase64Strict(item.context ?? '')
  return decoded.ok ? null : decoded.error
}

/**
 * Features of Vault's AES keys this server does not implement (convergent
 * nonces, associated data); the item fails rather than being processed
 * differently from Vault.
 */
export function unsupportedItemFeature(item: BatchItem): string | null {
  // Vault's ErrNonceNotAllowed: a nonce is only used by convergent v1 keys.
  if (item.nonce) return 'provided nonce not allowed for this key'
  if (item.associatedData) return 'associated_data is not supported by this server'
  return null
}

/** One item's failure, as Vault reports it in `batch_results`. */
export interface ItemFailure {
  error: string
  reference: string
}

/**
 * One item's result, in the order of Vault's batch loops: the context
 * check, then the unsupported features, then `work` on the key; a
 * KeyringError (the engine's refusal, with Vault's message) becomes the
 * item's `error`, anything else fails the request. Checks of the item's
 * own input (a missing ciphertext, a plaintext that is not base64) come
 * before, in the handler.
 */
export function itemResult<Result extends object>(
  item: BatchItem,
  work: () => Result
): (Result & { reference: string }) | ItemFailure {
  const reference = item.reference
  const refused = contextError(item) ?? unsupportedItemFeature(item)
  if (refused) return { error: refused, reference }
  try {
    return { ...work(), reference }
  } catch (error) {
    if (error instanceof KeyringError) return { error: error.message, reference }
    throw error
  }
}
