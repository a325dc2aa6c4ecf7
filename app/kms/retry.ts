/*
|--------------------------------------------------------------------------
| Bounded retry with exponential backoff and full jitter
|--------------------------------------------------------------------------
*/

/** Retry settings. */
export interface RetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts: number
  baseDelayMs: number
  maxDelayMs: number
}

/** What a failed attempt says about retrying. */
export interface RetryDecision {
  retry: boolean
  /** Server-requested delay (Retry-After), ms. */
  afterMs?: number
}

/** Injected for tests: a sleep and a random number in [0, 1). */
export interface RetryDeps {
  sleep: (ms: number) => Promise<void>
  random: () => number
}

/** Default sleep / random. */
export const defaultRetryDeps: RetryDeps = {
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
}

/**
 * The delay before attempt `attempt + 1` (attempt counts from 1).
 */
export function backoffDelay(
  attempt: number,
  options: RetryOptions,
  random: () => number,
  afterMs?: number
) {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1))
  const jittered = Math.floor(random() * ceiling)
  return afterMs !== undefined
    ? Math.min(Math.max(afterMs, jittered), options.maxDelayMs * 4)
    : jittered
}

/**
 * Runs `fn` until it succeeds, `classify` says not to retry, or attempts run out.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  classify: (error: unknown) => RetryDecision,
  options: RetryOptions,
  deps: RetryDeps = defaultRetryDeps,
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (error) {
      const decision = classify(error)
      if (!decision.retry || attempt >= options.maxAttempts) throw error
      const delay = backoffDelay(attempt, options, deps.random, decision.afterMs)
      onRetry?.(error, attempt, delay)
      await deps.sleep(delay)
    }
  }
}
