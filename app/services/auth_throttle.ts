/*
|--------------------------------------------------------------------------
| Authentication throttle
|--------------------------------------------------------------------------
|
| Counts failed authentications per client address and per token id
| (@adonisjs/limiter, limits in config/limiter.ts) and blocks an address or
| a token id that went over its limit. While blocked, requests are refused
| before their token is checked, a correct one included: otherwise a
| blocked guesser would still learn which guess was right.
|
| Trade-off (documented): token ids are small integers, so anyone can get a
| token id blocked for `blockDuration` by sending bad secrets for it; the
| per-token limit is the only defence against guessing spread over many
| addresses, and the address limit is lower.
|
*/
import limiter from '@adonisjs/limiter/services/main'
import { authFailureLimits, type FailureLimit } from '#config/limiter'

/** The limits in force. */
export interface AuthThrottleLimits {
  perIp: FailureLimit
  perToken: FailureLimit
  /** Prefix of the limiter keys (tests use their own). */
  keyPrefix?: string
}

/**
 * How long a key seen without any failure is not looked up again, ms. Every
 * authenticated request used to read both keys from the limiter's table (two
 * queries before the token's own). A failure recorded by this process clears
 * its keys' verdicts at once, so this process blocks on time; a failure
 * recorded by another server process is seen here at most this much later.
 */
export const CLEAR_VERDICT_MS = 1_000

/** Keys without a recorded failure, until when (this process; bounded). */
const clearUntil = new Map<string, number>()
const MAX_CLEAR_VERDICTS = 10_000

function rememberClear(key: string, until: number) {
  if (clearUntil.size >= MAX_CLEAR_VERDICTS) clearUntil.clear()
  clearUntil.set(key, until)
}

/**
 * Per address and per token id failure counting and blocking.
 */
export class AuthThrottle {
  constructor(
    private limits: AuthThrottleLimits = authFailureLimits,
    private now: () => number = () => performance.now()
  ) {}

  #limiter(limit: FailureLimit) {
    return limiter.use({
      requests: limit.requests,
      duration: limit.duration,
      blockDuration: limit.blockDuration,
      inMemoryBlockOnConsumed: limit.requests,
      inMemoryBlockDuration: limit.blockDuration,
    })
  }

  #keys(ip: string, tokenId: string | null) {
    const prefix = this.limits.keyPrefix ?? 'auth'
    const keys = [{ limit: this.limits.perIp, key: `${prefix}:ip:${ip}` }]
    if (tokenId !== null)
      keys.push({ limit: this.limits.perToken, key: `${prefix}:token:${tokenId}` })
    return keys
  }

  /**
   * Seconds until the address or token id may try again, or 0 when
   * neither is blocked.
   */
  async retryAfter(ip: string, tokenId: string | null): Promise<number> {
    let wait = 0
    const now = this.now()
    for (const { limit, key } of this.#keys(ip, tokenId)) {
      if ((clearUntil.get(key) ?? 0) > now) continue
      const state = await this.#limiter(limit).get(key)
      if (state && state.consumed >= state.limit) wait = Math.max(wait, state.availableIn, 1)
      else if (!state || state.consumed === 0) rememberClear(key, now + CLEAR_VERDICT_MS)
    }
    return wait
  }

  /**
   * Counts one failed authentication for the address and the token id;
   * blocks each key that reached its limit.
   */
  async recordFailure(ip: string, tokenId: string | null): Promise<void> {
    for (const { limit, key } of this.#keys(ip, tokenId)) {
      clearUntil.delete(key)
      const store = this.#limiter(limit)
      const { consumed } = await store.increment(key)
      if (consumed >= limit.requests) await store.block(key, limit.blockDuration)
    }
  }
}
