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

  /**
   * Rewrap loop defaults (each overridable per run with rotate:kek flags).
   */
  rotation: {
    /** Rows per batch: one SELECT, one KMS rewrap call (chunked by the driver), one UPDATE. */
    batchSize: 1000,
    /** Sleep after every batch, ms (`--sleep-ms`). */
    sleepMs: 0,
    /** Rows/s ceiling, 0 = none (`--max-rate`). */
    maxRate: 0,
    /** A KMS outage longer than this pauses the run as `failed` (resumable). */
    kmsOutageMs: 5 * 60_000,
    /** Extra passes to catch rows left stale by writes racing the scan. */
    maxPasses: 3,
    /** Rows/s assumed by --dry-run estimates when no throttle bounds them. */
    estimateRowsPerSecond: 20_000,
  },
}

export default rewrapConfig

/** Type of config/rewrap.ts. */
export type RewrapConfig = typeof rewrapConfig
