/*
|--------------------------------------------------------------------------
| Requests-per-second ceiling (token bucket, pure apart from the injected clock)
|--------------------------------------------------------------------------
|
| Cloud KMS quotas are per account and region (AWS) or per vault (Azure),
| shared by every client, so a driver must never send faster than its
| configured share however many calls are in flight. Each `acquire()` takes
| one token (or `cost`); tokens refill at `ratePerSecond` up to `burst`.
| When the bucket is empty a caller reserves its tokens (the count goes
| negative) and waits until they are due, so concurrent callers queue in
| arrival order and the rate holds across all of them. The burst defaults
| to a tenth of a second's worth, so no one-second window sees more than
| 1.1 × the rate. The one bucket of every cloud driver. Clock and sleep are
| injected for tests.
|
*/

/** Injected time source and sleep. */
export interface RateLimiterClock {
  /** Milliseconds (monotonic enough for pacing). */
  now: () => number
  sleep: (ms: number) => Promise<void>
}

/** Default clock: performance.now() and setTimeout. */
export const systemRateLimiterClock: RateLimiterClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}

/** Settings of a bucket. */
export interface RateLimiterOptions {
  /** Sustained ceiling; 0 or Infinity disables the limiter. */
  ratePerSecond: number
  /** Tokens that may be spent at once after an idle spell (default: 1 s worth / 10, ≥ 1). */
  burst?: number
}

/**
 * A token bucket shared by every call of one driver instance.
 */
export class TokenBucket {
  #rate: number
  #burst: number
  #tokens: number
  #last: number
  #clock: RateLimiterClock

  constructor(options: RateLimiterOptions, clock: RateLimiterClock = systemRateLimiterClock) {
    if (!(options.ratePerSecond >= 0)) throw new RangeError('ratePerSecond must be ≥ 0')
    this.#rate = options.ratePerSecond
    this.#burst = Math.max(1, options.burst ?? Math.floor(options.ratePerSecond / 10))
    this.#clock = clock
    this.#tokens = this.#burst
    this.#last = clock.now()
  }

  /** True when the bucket limits nothing. */
  get unlimited(): boolean {
    return this.#rate === 0 || !Number.isFinite(this.#rate)
  }

  /** The sustained ceiling, requests/s (0 = none). */
  get ratePerSecond(): number {
    return this.#rate
  }

  /** Tokens that may go at once after an idle spell. */
  get burst(): number {
    return this.#burst
  }

  /**
   * Reserves `cost` tokens now and answers how long (ms) the caller must
   * wait for them (pure bookkeeping; `acquire` sleeps it).
   */
  reserve(cost = 1): number {
    if (this.unlimited) return 0
    const now = this.#clock.now()
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#rate) / 1000)
    this.#last = now
    this.#tokens -= cost
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.#rate
  }

  /**
   * Takes `cost` tokens, waiting until they are due. Resolves at once while
   * tokens are left.
   */
  async acquire(cost = 1): Promise<void> {
    const waitMs = this.reserve(cost)
    if (waitMs > 0) await this.#clock.sleep(waitMs)
  }
}
