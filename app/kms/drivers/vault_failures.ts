/*
|--------------------------------------------------------------------------
| Vault failures: what to retry, which E_* error to answer
|--------------------------------------------------------------------------
|
| How the vault driver reads a failed node-vault call: whether it is worth
| another attempt (and when, from Retry-After), and the E_* error it
| becomes. Vault's message (`errors[0]`) is classified by error_codes.ts;
| a 400 batch answer keeps its `batch_results` so each item is checked on
| its own.
|
*/
import { E_KMS_REDIRECT } from '#app/errors'
import { classifyKmsError, kmsError } from '#kms/error_codes'
import type { RetryDecision } from '#kms/retry'
import { responseHeaders, TransportError } from '#kms/vault_transport'

/** A failed node-vault call: the HTTP answer, when there was one. */
interface VaultFailure {
  response?: { statusCode: number; body: any }
  message: string
}

/**
 * Whether a failed call is retried. Non-idempotent calls (create, rotate)
 * are retried only when the server said it did not act (429, 503) or the
 * connection was never made.
 */
export function vaultRetryDecision(error: unknown, idempotent: boolean): RetryDecision {
  if (error instanceof TransportError) {
    return { retry: idempotent || error.message.includes('ECONNREFUSED') }
  }
  const status = (error as VaultFailure).response?.statusCode ?? 0
  if (status === 429 || status === 503) return { retry: true, afterMs: retryAfter(error) }
  if (status >= 500) return { retry: idempotent, afterMs: retryAfter(error) }
  return { retry: false }
}

/** The E_* error a failed call of KEK `name` answers. */
export function vaultError(name: string, error: unknown): Error {
  if (error instanceof TransportError) return kmsError('E_KMS_UNAVAILABLE', error.message, name)
  if (error instanceof E_KMS_REDIRECT) return error
  const failure = error as VaultFailure
  const status = failure.response?.statusCode
  if (!status) {
    return kmsError('E_KMS_UNAVAILABLE', `unexpected client failure: ${failure?.message}`, name)
  }
  const body = failure.response?.body
  const message = String(body?.errors?.[0] ?? `status ${status}`)
  const code = classifyKmsError(message, status)
  const converted = kmsError(
    code,
    status >= 500 || status === 429 ? `status ${status}: ${message}` : message,
    name
  )
  if (Array.isArray(body?.data?.batch_results))
    (converted as any).batchResults = body.data.batch_results
  return converted
}

/** Retry-After (seconds or an HTTP date) of a failed answer, in ms. */
function retryAfter(error: unknown): number | undefined {
  const body = (error as VaultFailure).response?.body
  const header =
    body && typeof body === 'object' ? responseHeaders.get(body)?.get('retry-after') : null
  if (!header) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(header)
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined
}
