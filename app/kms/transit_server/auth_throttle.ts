/*
|--------------------------------------------------------------------------
| Failed-authentication throttle of the transit server
|--------------------------------------------------------------------------
|
| Per remote address: `maxFailures` failed token checks within `windowMs`
| lock the address out for `windowMs`; while locked, every request of it
| that needs a token is answered 429 with Retry-After, before the token
| is compared (a right guess must not be told apart from a wrong one).
| Memory is bounded: at most `maxAddresses` addresses are tracked, the
| oldest dropped first. The clock is injected (tests need no sleeps).
|
*/
import { TransitHttpError } from '#kms/transit_server/http_error'

/** Options of {@link AuthThrottle}. */
export interface AuthThrottleOptions {
  /** Failures within the window that lock an address out (default 20). */
  maxFailures?: number
  /** Window in which failures are counted, and length of a lockout, ms (default 60 000). */
  windowMs?: number
  /** Addresses tracked at most (default 10 000). */
  maxAddresses?: number
  /** Milliseconds clock; injected for tests. */
  clock?: () => number
}

/** Defaults of {@link AuthThrottleOptions}. */
export const AUTH_THROTTLE_DEFAULTS = { maxFailures: 20, windowMs: 60_000, maxAddresses: 10_000 }

interface AddressState {
  failures: number
  windowStart: number
  lockedUntil: number
}

/**
 * Counts failed authentications per remote address and locks addresses out.
 */
export class AuthThrottle {
  #maxFailures: number
  #windowMs: number
  #maxAddresses: number
  #clock: () => number
  #addresses = new Map<string, AddressState>()

  constructor(options: AuthThrottleOptions = {}) {
    this.#maxFailures = options.maxFailures ?? AUTH_THROTTLE_DEFAULTS.maxFailures
    this.#windowMs = options.windowMs ?? AUTH_THROTTLE_DEFAULTS.windowMs
    this.#maxAddresses = options.maxAddresses ?? AUTH_THROTTLE_DEFAULTS.maxAddresses
    this.#clock = options.clock ?? Date.now
  }

  /**
   * Throws the 429 to answer when `address` is locked out.
   */
  assertAllowed(address: string) {
    const state = this.#addresses.get(address)
    if (!state) return
    const remaining = state.lockedUntil - this.#clock()
    if (remaining > 0) {
      throw new TransitHttpError(
        429,
        'too many failed authentication attempts; retry later',
        undefined,
        { 'retry-after': String(Math.ceil(remaining / 1000)) }
      )
    }
  }

  /**
   * Records a failed authentication of `address`.
   */
  recordFailure(address: string) {
    const now = this.#clock()
    let state = this.#addresses.get(address)
    if (!state || now - state.windowStart >= this.#windowMs) {
      this.#addresses.delete(address)
      if (this.#addresses.size >= this.#maxAddresses) {
        const oldest = this.#addresses.keys().next().value
        if (oldest !== undefined) this.#addresses.delete(oldest)
      }
      state = { failures: 0, windowStart: now, lockedUntil: state?.lockedUntil ?? 0 }
      this.#addresses.set(address, state)
    }
    state.failures++
    if (state.failures >= this.#maxFailures) {
      state.lockedUntil = now + this.#windowMs
      state.failures = 0
      state.windowStart = now
    }
  }

  /** Addresses tracked now (for tests of the bound). */
  get trackedAddresses(): number {
    return this.#addresses.size
  }
}
