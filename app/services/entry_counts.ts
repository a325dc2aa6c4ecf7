/*
|--------------------------------------------------------------------------
| Rows per KEK and version
|--------------------------------------------------------------------------
|
| The one inventory query of vault_entries: `GROUP BY kek_name, kek_version`,
| answered from the (kek_name, kek_version, id) index (an index-only scan
| once the visibility map is current). `kek:list`, `rotation:verify` and
| the rotation plan ask it directly; the status report, /metrics and
| /health/ready share the EntryCountCache (a container singleton bound by
| providers/app_provider.ts): counts a few seconds old, one query in flight
| at most.
|
*/
import db from '@adonisjs/lucid/services/db'

/** kek_name → (kek_version → rows). */
export type RowsPerVersion = Map<string, Map<number, number>>

/** How long the cache serves row counts from memory. */
export const COUNTS_TTL_MS = 5_000

/**
 * Rows of vault_entries per KEK and version; only `kekName`'s when given,
 * only versions below `belowVersion` when given.
 */
export async function countEntries(
  filter: { kekName?: string; belowVersion?: number } = {}
): Promise<RowsPerVersion> {
  const query = db
    .from('vault_entries')
    .select('kek_name', 'kek_version')
    .count('* as rows')
    .groupBy('kek_name', 'kek_version')
  if (filter.kekName !== undefined) query.where('kek_name', filter.kekName)
  if (filter.belowVersion !== undefined) query.where('kek_version', '<', filter.belowVersion)
  const out: RowsPerVersion = new Map()
  for (const row of await query) {
    let perVersion = out.get(row.kek_name)
    if (!perVersion) out.set(row.kek_name, (perVersion = new Map()))
    perVersion.set(Number(row.kek_version), Number(row.rows))
  }
  return out
}

/**
 * One KEK's rows per version as a list, ascending by version.
 */
export async function rowsPerVersionOf(
  kekName: string,
  belowVersion?: number
): Promise<Array<{ version: number; rows: number }>> {
  const counts = await countEntries({ kekName, belowVersion })
  return [...(counts.get(kekName) ?? new Map<number, number>())]
    .map(([version, rows]) => ({ version, rows }))
    .sort((a, b) => a.version - b.version)
}

/** Rows per KEK and version, and when they were counted. */
export interface EntryCounts {
  counts: RowsPerVersion
  asOf: Date
}

/**
 * {@link countEntries} of every KEK, cached for `ttlMs`, at most one query
 * in flight. Resolve it from the container (one per process).
 */
export class EntryCountCache {
  #value: EntryCounts | null = null
  #pending: Promise<EntryCounts> | null = null

  constructor(private ttlMs: number = COUNTS_TTL_MS) {}

  /** Seconds a served count may be old. */
  get maxAgeSeconds(): number {
    return this.ttlMs / 1000
  }

  /**
   * The counts, fresh from the table when the cached ones are older than the TTL.
   */
  async get(now: Date = new Date()): Promise<EntryCounts> {
    if (this.#value && now.getTime() - this.#value.asOf.getTime() < this.ttlMs) {
      return this.#value
    }
    if (!this.#pending) {
      this.#pending = this.#load().finally(() => {
        this.#pending = null
      })
    }
    return this.#pending
  }

  /**
   * Forgets the cached counts (tests; after bulk changes).
   */
  clear() {
    this.#value = null
  }

  async #load(): Promise<EntryCounts> {
    const asOf = new Date()
    this.#value = { counts: await countEntries(), asOf }
    return this.#value
  }
}
