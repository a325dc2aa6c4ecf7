/*
|--------------------------------------------------------------------------
| Rewrap settings
|--------------------------------------------------------------------------
*/

const rewrapConfig = {
  /**
   * DEK cache on the entry read path: at most `maxEntries` unwrapped DEKs,
   * each for at most `ttlMs`. Keyed by id and wrapped DEK, so a row that was
   * rewrapped or rewritten never serves a stale wrap.
   */
  dekCache: {
    maxEntries: 10_000,
    ttlMs: 5 * 60_000,
  },
}

export default rewrapConfig

/** Type of config/rewrap.ts. */
export type RewrapConfig = typeof rewrapConfig
