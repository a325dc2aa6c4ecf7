/*
|--------------------------------------------------------------------------
| A requests/s budget shared by concurrent calls (token bucket)
|--------------------------------------------------------------------------
|
| Cloud KMS quotas are per vault / account and shared by every client, so a
| driver spends a configured share of them and never more, whatever its
| concurrency. Each caller reserves its tokens at once (the bucket may go
| into debt) and waits until the debt is paid back at the refill rate: the
| waits are FIFO by construction and no queue or timer is kept. Clock and
| sleep are injected (unit-tested with a fake clock).
|
*/

/** Budget settings. */
export interface RequestBudgetOptions {
  /** Sustained rate, requests per second (> 0). */
  ratePerSecond: number
  /** Requests that may go at once after an idle period (≥ 1; default 1 s worth, at least 1). */
  burst?: number
  /** Milliseconds, monotonic; injected for tests. */
  now?: () => number
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>
}

/**
 * A token bucket that callers `take()` from before each request.
 */
export class RequestBudget {
  readonly ratePerSecond: number
  readonly burst: number
  #tokens: number
  #updatedAt: number
  #now: () => number
  #sleep: (ms: number) => Promise<void>

  constructor(options: RequestBudgetOptions) {
    if (!(options.ratePerSecond > 0) || !Number.isFinite(options.ratePerSecond)) {
      throw new RangeError('ratePerSecond must be a positive number')
    }
    this.ratePerSecond = options.ratePerSecond
    this.burst = Math.max(1, options.burst ?? Math.ceil(options.ratePerSecond))
    this.#now = options.now ?? (() => performance.now())
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)))
    this.#tokens = this.burst
    this.#updatedAt = this.#now()
  }

  /**
   * The wait (ms) a request costing `cost` tokens would need now, reserving
   * the tokens (pure bookkeeping; `take` sleeps it).
   */
  reserve(cost = 1): number {
    const now = this.#now()
    const elapsed = Math.max(0, now - this.#updatedAt)
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000)
    this.#updatedAt = now
    this.#tokens -= cost
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.ratePerSecond
  }

  /** Waits until `cost` requests fit in the budget. */
  async take(cost = 1): Promise<void> {
    const wait = this.reserve(cost)
    if (wait > 0) await this.#sleep(wait)
  }
}
