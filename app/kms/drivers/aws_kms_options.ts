/*
|--------------------------------------------------------------------------
| AWS KMS driver options
|--------------------------------------------------------------------------
|
| Apart from aws_kms.ts (which imports @aws-sdk/client-kms) so that
| config/kms.ts can check them when the KMS manager is made without loading
| the SDK in processes that never use the driver.
|
*/
import { E_CONFIG_INVALID } from '#app/errors'
import type { RateLimiterClock } from '#kms/rate_limiter'
import type { RetryDeps, RetryOptions } from '#kms/retry'

/** Options of the aws-kms driver (config/kms.ts: drivers.awsKms). */
export interface AwsKmsDriverOptions {
  /** Else the SDK's chain (AWS_REGION, shared config). */
  region?: string
  /** Else the SDK's (AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, the regional endpoint). */
  endpoint?: string
  /** Else the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** Requests in flight at once for one call (rewrap, wrap, unwrap); default 32. */
  concurrency?: number
  /** Ceiling over every call of this driver; default 1,000 (a tenth of the 10,000/s account quota); 0: none. */
  requestsPerSecond?: number
  /** ScheduleKeyDeletion's waiting period, 7–30 days; default 30. */
  pendingWindowInDays?: number
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number
  retry?: RetryOptions
  /** Injected for tests. */
  retryDeps?: RetryDeps
  /** Injected for tests (the requests/s ceiling's clock). */
  clock?: RateLimiterClock
}

/** Checks the options that AWS would refuse late (at trim time). */
export function assertAwsKmsOptions(options: AwsKmsDriverOptions) {
  const days = options.pendingWindowInDays ?? 30
  if (!Number.isInteger(days) || days < 7 || days > 30) {
    throw new E_CONFIG_INVALID(['config/kms.ts', 'awsKms.pendingWindowInDays must be 7–30'])
  }
  const { concurrency, requestsPerSecond } = options
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0)) {
    throw new E_CONFIG_INVALID(['config/kms.ts', 'awsKms.concurrency must be a positive integer'])
  }
  if (
    requestsPerSecond !== undefined &&
    !(Number.isFinite(requestsPerSecond) && requestsPerSecond >= 0)
  ) {
    throw new E_CONFIG_INVALID([
      'config/kms.ts',
      'awsKms.requestsPerSecond must be ≥ 0 (0: no ceiling)',
    ])
  }
}
