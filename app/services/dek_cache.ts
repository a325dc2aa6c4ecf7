/*
|--------------------------------------------------------------------------
| DEK cache
|--------------------------------------------------------------------------
|
| A bounded LRU of unwrapped DEKs with a TTL. The key is the row id plus
| the wrapped DEK itself: a rewrapped or rewritten row has a new wrapped
| value and so a new key, and can never be served a stale wrap. Entries
| are wiped (zero-filled) when evicted; callers get and give copies, so a
| DEK in use is never wiped under them by an eviction, and a caller that
| wipes its own copy never damages the cached one.
|
| Revocation (a KEK version retired or trimmed, a KEK deleted) empties the
| cache: `invalidate()`, called in the process that made the change and,
| through Postgres LISTEN/NOTIFY, in every process sharing the database
| (app/services/dek_cache_invalidation.ts). A DEK unwrapped before an
| invalidation but stored after it is dropped (generation check). While
| the invalidation listener is disconnected the cache is suspended: empty,
| and it neither serves nor stores DEKs, so no missed notice can leave a
| revoked DEK in use.
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
  /** key (`id|wrapped`) → entry, in least-recently-used-first order. */
  #map = new Map<string, { id: string; dek: Buffer; expiresAt: number }>()
  /** row id → its keys, so forgetRow does not scan the whole cache. */
  #byRow = new Map<string, Set<string>>()
  #hits = 0
  #misses = 0
  #generation = 0
  #suspended = false

  /**
   * @param maxEntries  at most this many DEKs are held (0 disables the cache)
   * @param ttlMs       a DEK is served for at most this long after `set`
   * @param now         clock in milliseconds (injected by tests)
   */
  constructor(
    private maxEntries: number,
    private ttlMs: number,
    private now: () => number = Date.now
  ) {}

  /**
   * A copy of the DEK for a row's current wrap, or undefined. The caller
   * owns the copy (and should wipe it after use).
   */
  get(id: string, wrapped: string): Buffer | undefined {
    const key = `${id}|${wrapped}`
    const hit = this.#suspended ? undefined : this.#map.get(key)
    if (!hit || hit.expiresAt <= this.now()) {
      if (hit) this.#evict(key)
      this.#misses++
      return undefined
    }
    this.#map.delete(key)
    this.#map.set(key, hit)
    this.#hits++
    return Buffer.from(hit.dek)
  }

  /**
   * The current generation: take it before asking the KMS for a DEK and
   * pass it to {@link set}, so a DEK obtained before an invalidation is
   * not cached after it.
   */
  get generation(): number {
    return this.#generation
  }

  /**
   * Stores a DEK for a row's wrap (copied; the caller may wipe its own).
   * Ignored when `generation` is given and an invalidation happened since.
   */
  set(id: string, wrapped: string, dek: Buffer, generation?: number) {
    if (this.maxEntries <= 0 || this.ttlMs <= 0 || this.#suspended) return
    if (generation !== undefined && generation !== this.#generation) return
    const key = `${id}|${wrapped}`
    this.#evict(key)
    this.#map.set(key, { id, dek: Buffer.from(dek), expiresAt: this.now() + this.ttlMs })
    let keys = this.#byRow.get(id)
    if (!keys) this.#byRow.set(id, (keys = new Set()))
    keys.add(key)
    while (this.#map.size > this.maxEntries) {
      this.#evict(this.#map.keys().next().value as string)
    }
  }

  /**
   * Forgets every DEK of a row (deleted or rewritten).
   */
  forgetRow(id: string) {
    const keys = this.#byRow.get(id)
    if (!keys) return
    for (const key of [...keys]) this.#evict(key)
  }

  /**
   * Revocation: forgets (wipes) every DEK and starts a new generation.
   */
  invalidate() {
    this.#generation++
    this.clear()
  }

  /**
   * Stops serving and storing DEKs (the invalidation listener lost its
   * connection: notices may be missed). Empties the cache.
   */
  suspend() {
    this.#suspended = true
    this.invalidate()
  }

  /**
   * Serves DEKs again (the listener is connected and listening).
   */
  resume() {
    this.invalidate()
    this.#suspended = false
  }

  /** True while suspended. */
  get suspended(): boolean {
    return this.#suspended
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
    if (!entry) return
    entry.dek.fill(0)
    this.#map.delete(key)
    const keys = this.#byRow.get(entry.id)
    keys?.delete(key)
    if (keys?.size === 0) this.#byRow.delete(entry.id)
  }
}
