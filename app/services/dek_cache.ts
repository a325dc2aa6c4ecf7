/*
|--------------------------------------------------------------------------
| DEK cache
|--------------------------------------------------------------------------
|
| A bounded LRU of unwrapped DEKs with a TTL. The key is the row id plus
| the wrapped DEK itself: a rewrapped or rewritten row has a new wrapped
| value and so a new key, and can never be served a stale wrap. Entries
| are wiped (zero-filled) when evicted.
|
*/

/** Cache statistics. */
export interface DekCacheStats {
  hits: number
  misses: number
  size: number
}

/**
 * LRU + TTL cache of DEKs.
 */
export class DekCache {
  #map = new Map<string, { dek: Buffer; expiresAt: number }>()
  #hits = 0
  #misses = 0

  constructor(
    private maxEntries: number,
    private ttlMs: number,
    private now: () => number = Date.now
  ) {}

  /**
   * The DEK for a row's current wrap, or undefined.
   */
  get(id: string, wrapped: string): Buffer | undefined {
    const key = `${id}|${wrapped}`
    const hit = this.#map.get(key)
    if (!hit || hit.expiresAt <= this.now()) {
      if (hit) this.#evict(key)
      this.#misses++
      return undefined
    }
    this.#map.delete(key)
    this.#map.set(key, hit)
    this.#hits++
    return hit.dek
  }

  /**
   * Stores a DEK for a row's wrap (copied; the caller may wipe its own).
   */
  set(id: string, wrapped: string, dek: Buffer) {
    if (this.maxEntries <= 0) return
    const key = `${id}|${wrapped}`
    this.#map.delete(key)
    this.#map.set(key, { dek: Buffer.from(dek), expiresAt: this.now() + this.ttlMs })
    while (this.#map.size > this.maxEntries) {
      this.#evict(this.#map.keys().next().value as string)
    }
  }

  /**
   * Forgets every DEK of a row (deleted or rewritten).
   */
  forgetRow(id: string) {
    for (const key of this.#map.keys()) {
      if (key.startsWith(`${id}|`)) this.#evict(key)
    }
  }

  /**
   * Hit / miss counters and size.
   */
  stats(): DekCacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#map.size }
  }

  /**
   * Empties the cache.
   */
  clear() {
    for (const key of [...this.#map.keys()]) this.#evict(key)
  }

  #evict(key: string) {
    const entry = this.#map.get(key)
    if (entry) entry.dek.fill(0)
    this.#map.delete(key)
  }
}
