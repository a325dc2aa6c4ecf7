/*
|--------------------------------------------------------------------------
| AWS KMS calls: pacing, retries, error codes
|--------------------------------------------------------------------------
|
| Every request of the aws-kms driver goes through `AwsKmsCalls.send`:
| one token of the requests/s ceiling (shared by every call of the
| driver, rate_limiter.ts), then the SDK call, retried with exponential
| backoff and full jitter (retry.ts) on throttling — always, since AWS did
| not act — and on 5xx / network failures only when the operation is
| idempotent. The SDK's own retries are off (maxAttempts 1), so pacing and
| retries are this module's alone. Failures become the contract's E_*
| errors with fixed messages; AWS's text stays in the cause for the log.
|
*/
import type { KMSClient } from '@aws-sdk/client-kms'
import { kmsError, type KmsErrorCode } from '#kms/error_codes'
import type { TokenBucket } from '#kms/rate_limiter'
import { withRetry, type RetryDecision, type RetryDeps, type RetryOptions } from '#kms/retry'

/** What the SDK throws (ServiceException or a transport error). */
interface SdkFailure {
  name?: string
  message?: string
  code?: string
  $metadata?: { httpStatusCode?: number }
  $retryable?: { throttling?: boolean }
}

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'LimitExceededException',
])

const DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'NotAuthorizedException',
  'InvalidClientTokenId',
  'CredentialsProviderError',
])

/** True when AWS throttled the request (it did not act). */
export function isThrottling(error: unknown): boolean {
  const failure = error as SdkFailure
  return (
    THROTTLING.has(failure?.name ?? '') ||
    failure?.$metadata?.httpStatusCode === 429 ||
    failure?.$retryable?.throttling === true
  )
}

/** The stable code of an SDK failure. */
export function codeOf(error: unknown): KmsErrorCode {
  const failure = error as SdkFailure
  const name = failure?.name ?? ''
  const status = failure?.$metadata?.httpStatusCode
  if (isThrottling(error)) return 'E_KMS_UNAVAILABLE'
  if (DENIED.has(name) || status === 403) return 'E_KMS_DENIED'
  if (name === 'NotFoundException') return 'E_KEK_NOT_FOUND'
  if (name === 'DisabledException' || name === 'KMSInvalidStateException') {
    return 'E_KEY_VERSION_DISALLOWED'
  }
  if (name === 'InvalidCiphertextException' || name === 'IncorrectKeyException') {
    return 'E_CIPHERTEXT_INVALID'
  }
  if (status === undefined || status >= 500 || name === 'KMSInternalException') {
    return 'E_KMS_UNAVAILABLE'
  }
  return 'E_KMS_REJECTED'
}

/** AWS's error type and text, for the operator's log only. */
export function detailOf(error: unknown): string {
  const failure = error as SdkFailure
  const status = failure?.$metadata?.httpStatusCode
  return `${failure?.name ?? 'Error'}${status ? ` (${status})` : ''}: ${failure?.message ?? ''}`
}

/** Settings of the call layer. */
export interface AwsKmsCallOptions {
  client: KMSClient
  bucket: TokenBucket
  retry: RetryOptions
  retryDeps: RetryDeps
}

/**
 * Sends commands with pacing and retries.
 */
export class AwsKmsCalls {
  constructor(private options: AwsKmsCallOptions) {}

  /**
   * Sends `command`; `idempotent` false for CreateKey (a retry after an
   * ambiguous failure could make a second key). Throws E_* errors.
   */
  async send<T>(kek: string, command: any, idempotent = true): Promise<T> {
    try {
      return await this.raw<T>(command, idempotent)
    } catch (error) {
      throw kmsError(codeOf(error), detailOf(error), kek)
    }
  }

  /** Like `send` but throws the SDK's error (for callers that branch on its name). */
  async raw<T>(command: any, idempotent = true): Promise<T> {
    const { client, bucket, retry, retryDeps } = this.options
    return withRetry(
      async () => {
        await bucket.acquire()
        return (await client.send(command)) as T
      },
      (error): RetryDecision => {
        if (isThrottling(error)) return { retry: true }
        const code = codeOf(error)
        return { retry: idempotent && code === 'E_KMS_UNAVAILABLE' }
      },
      retry,
      retryDeps
    )
  }
}
