/*
|--------------------------------------------------------------------------
| Single-flight cache of one value
|--------------------------------------------------------------------------
|
| Holds the last result of an expensive probe for `ttlMs`; callers that
| arrive while it runs share the run in flight instead of starting
| another. A failed run is not kept. The clock is injected.
|
*/

/**
 * One value, computed at most once per `ttlMs`, one computation at a time.
 */
export class SingleFlightCache<T> {
  #value: { value: T; at: number } | null = null
  #inflight: Promise<T> | null = null
  #epoch = 0

  /** @param now clock in milliseconds */
  constructor(private now: () => number = Date.now) {}

  /**
   * The cached value when younger than `ttlMs`, else the run in flight,
   * else a new run of `compute`.
   */
  get(ttlMs: number, compute: () => Promise<T>): Promise<T> {
    if (this.#value && this.now() - this.#value.at < ttlMs) {
      return Promise.resolve(this.#value.value)
    }
    if (this.#inflight) return this.#inflight
    const epoch = this.#epoch
    const tracked: Promise<T> = compute()
      .then((value) => {
        if (epoch === this.#epoch) this.#value = { value, at: this.now() }
        return value
      })
      .finally(() => {
        if (this.#inflight === tracked) this.#inflight = null
      })
    this.#inflight = tracked
    return tracked
  }

  /** The last value kept and when (clock ms), however old; null before the first. */
  peek(): { value: T; at: number } | null {
    return this.#value
  }

  /** Forgets the cached value (a run in flight completes for its callers but is not kept). */
  clear() {
    this.#epoch++
    this.#value = null
    this.#inflight = null
  }
}
