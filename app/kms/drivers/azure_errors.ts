/*
|--------------------------------------------------------------------------
| Key Vault errors → Rewrap codes, and what to retry
|--------------------------------------------------------------------------
|
| The SDK throws a RestError with `statusCode`, `code` (Key Vault's
| `error.code`: KeyNotFound, Forbidden, BadParameter, Throttled, …) and
| `details.error.innerError.code` (KeyDisabled, ForbiddenByRbac, …).
| Key Vault's message stays in the error's cause (operators' log), never in
| what clients see (app/kms/error_codes.ts).
|
*/
import type { KmsErrorCode } from '#kms/error_codes'
import type { RetryDecision } from '#kms/retry'

/** The fields of a RestError that matter here. */
interface RestErrorLike {
  name?: string
  statusCode?: number
  code?: string
  message?: string
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } }
  response?: { headers?: { get(name: string): string | undefined } }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'REQUEST_SEND_ERROR',
])

function fields(error: unknown): RestErrorLike {
  return (error ?? {}) as RestErrorLike
}

/** Key Vault's inner error code, if any (KeyDisabled, ForbiddenByRbac, …). */
export function innerCode(error: unknown): string | undefined {
  return fields(error).details?.error?.innerError?.code
}

/** True for a 403 caused by a disabled key version (a retired Rewrap version). */
export function isDisabledKey(error: unknown): boolean {
  const e = fields(error)
  if (e.statusCode !== 403) return false
  const text = `${innerCode(error) ?? ''} ${e.details?.error?.message ?? e.message ?? ''}`
  return /KeyDisabled|disabled key/i.test(text)
}

/** True when the request never reached a server or its answer was lost. */
export function isNetworkError(error: unknown): boolean {
  const e = fields(error)
  return (
    e.statusCode === undefined && (NETWORK_CODES.has(String(e.code)) || e.name === 'AbortError')
  )
}

/**
 * Classifies a failed Key Vault call. `op` tells unwrap's 400 (a ciphertext
 * Key Vault could not unwrap) from other bad requests.
 */
export function classifyAzureError(error: unknown, op?: 'unwrap'): KmsErrorCode {
  const e = fields(error)
  const status = e.statusCode
  // No status: a transport failure (RestError) or the SDK refusing locally.
  if (status === undefined) {
    return e.name === 'RestError' || isNetworkError(error) ? 'E_KMS_UNAVAILABLE' : 'E_KMS_REJECTED'
  }
  if (status === 429 || status >= 500) return 'E_KMS_UNAVAILABLE'
  if (isDisabledKey(error)) return 'E_KEY_VERSION_DISALLOWED'
  if (status === 401 || status === 403) return 'E_KMS_DENIED'
  if (status === 404) return 'E_KEK_NOT_FOUND'
  if (status === 400 && op === 'unwrap') return 'E_CIPHERTEXT_INVALID'
  return 'E_KMS_REJECTED'
}

/** The server-requested delay (Retry-After seconds or HTTP date), ms. */
export function retryAfterMs(error: unknown, now = Date.now()): number | undefined {
  const header = fields(error).response?.headers?.get('retry-after')
  if (!header) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(header)
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined
}

/**
 * Retry policy: 429 and 503 always (Key Vault did not act), other 5xx and
 * lost connections when the call is idempotent (or reconciled, as create is).
 */
export function azureRetryDecision(error: unknown, idempotent: boolean): RetryDecision {
  const status = fields(error).statusCode
  if (status === 429 || status === 503) return { retry: true, afterMs: retryAfterMs(error) }
  if (status !== undefined && status >= 500) {
    return { retry: idempotent, afterMs: retryAfterMs(error) }
  }
  if (isNetworkError(error)) return { retry: idempotent || fields(error).code === 'ECONNREFUSED' }
  return { retry: false }
}

/** Key Vault's own text of a failure, for the operators' log (never secret material). */
export function azureDetail(error: unknown): string {
  const e = fields(error)
  const code = e.details?.error?.code ?? e.code ?? 'error'
  const inner = innerCode(error)
  const message = e.details?.error?.message ?? e.message ?? ''
  return `${e.statusCode ?? 'no status'} ${code}${inner ? `/${inner}` : ''}: ${message}`
}
