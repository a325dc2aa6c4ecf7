/*
|--------------------------------------------------------------------------
| Entry seeder (bulk inserts)
|--------------------------------------------------------------------------
|
| The bulk path of `demo:seed` and load tests, apart from the entry
| service's one-row create / read / compare-and-swap update: DEKs generated
| locally, ONE KMS wrap call per batch, ids reserved from the sequence,
| ONE multi-row INSERT, and the next batch wrapped and sealed while
| Postgres inserts the previous one. Inserts write new ids only, so there
| is nothing to compare against (see the CAS writers in
| docs/architecture.md). Nothing is cached: bulk loads would only evict
| hot DEKs. Reached through `EntryService.seed`.
|
*/
import type { Logger } from '@adonisjs/core/logger'
import db from '@adonisjs/lucid/services/db'
import { entryAad, sealJson } from '#crypto/envelope'
import { KEY_BYTES, NONCE_BYTES, type RandomBytes } from '#crypto/aead'
import { wrappedDekVersion } from '#crypto/wrapped_dek'
import { kmsError } from '#kms/error_codes'
import type { KmsManager } from '#kms/kms_manager'

/** What one bulk insert batch wrote. */
interface BatchRef {
  /** Rows written. */
  count: number
  /** Ids written, ascending. */
  ids: string[]
  /** KEK versions the DEKs were wrapped under (normally one). */
  kekVersions: number[]
}

/** Options of {@link seedEntries}. */
export interface SeedOptions {
  rows: number
  batchSize: number
  /** Builds the payload of the i-th row (0-based). */
  payload?: (index: number) => unknown
  /** Called after each batch with the rows written so far. */
  onProgress?: (done: number, total: number) => void
}

/** What {@link seedEntries} wrote. */
export interface SeedResult {
  rows: number
  batches: number
  firstId: string | null
  lastId: string | null
  kekVersions: number[]
}

/** A batch wrapped and sealed, ready to insert. */
interface PreparedBatch {
  ids: string[]
  versions: number[]
  wrapped: string[]
  ciphertexts: Buffer[]
}

/** What the bulk path uses of the entry service. */
export interface SeedDeps {
  kms: KmsManager
  /** Randomness for DEKs and nonces. */
  random: RandomBytes
  logger?: Logger
}

/**
 * Bulk-loads `rows` entries in batches of `batchSize` (demo data, load
 * tests). The KEK must exist. Batches are pipelined: the next batch is
 * wrapped and sealed while Postgres inserts the previous one.
 */
export async function seedEntries(
  deps: SeedDeps,
  kekName: string,
  options: SeedOptions
): Promise<SeedResult> {
  const payload = options.payload ?? ((i: number) => ({ n: i, note: 'demo' }))
  const versions = new Set<number>()
  let prepared = 0
  let done = 0
  let batches = 0
  let firstId: string | null = null
  let lastId: string | null = null
  let inserting: Promise<void> | null = null
  try {
    while (prepared < options.rows) {
      const size = Math.min(options.batchSize, options.rows - prepared)
      const values = Array.from({ length: size }, (_, i) => payload(prepared + i))
      prepared += size
      const batch = await prepareBatch(deps, kekName, values)
      await inserting
      inserting = insertBatch(kekName, batch).then((ref) => {
        firstId ??= ref.ids[0]
        lastId = ref.ids[ref.ids.length - 1]
        ref.kekVersions.forEach((v) => versions.add(v))
        done += ref.count
        batches++
        options.onProgress?.(done, options.rows)
      })
    }
    await inserting
  } finally {
    // A failed batch must not leave the one in flight unobserved.
    await inserting?.catch(() => {})
  }
  deps.logger?.info({ kekName, rows: done, batches, firstId, lastId }, 'entries seeded')
  return {
    rows: done,
    batches,
    firstId,
    lastId,
    kekVersions: [...versions].sort((a, b) => a - b),
  }
}

/**
 * Wraps fresh DEKs (one KMS call), reserves ids, seals the payloads. The
 * plaintext DEKs are wiped before this returns.
 */
async function prepareBatch(
  deps: SeedDeps,
  kekName: string,
  values: unknown[]
): Promise<PreparedBatch> {
  const n = values.length
  const driver = await deps.kms.forKek(kekName)
  const pool = deps.random(KEY_BYTES * n)
  try {
    const deks = Array.from({ length: n }, (_, i) =>
      pool.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES)
    )
    const [wrapped, reserved] = await Promise.all([
      driver.wrap(kekName, deks),
      db.rawQuery(
        `SELECT nextval(pg_get_serial_sequence('vault_entries', 'id'))::text AS id
           FROM generate_series(1, ?::int)`,
        [n]
      ),
    ])
    const versions = wrapped.map((value) => wrappedDekVersion(value) ?? 0)
    if (wrapped.length !== n || versions.some((v) => v < 1)) {
      throw kmsError('E_KMS_REJECTED', 'wrap answered an unexpected result', kekName)
    }
    const ids = (reserved.rows as Array<{ id: string }>).map((r) => r.id)
    const nonces = deps.random(NONCE_BYTES * n)
    let offset = 0
    const nextNonce: RandomBytes = (size) => nonces.subarray(offset, (offset += size))
    const ciphertexts = values.map((value, i) =>
      sealJson(deks[i], value, entryAad(ids[i], kekName), nextNonce)
    )
    return { ids, versions, wrapped, ciphertexts }
  } finally {
    pool.fill(0)
  }
}

/** ONE multi-row INSERT of a prepared batch. */
async function insertBatch(kekName: string, batch: PreparedBatch): Promise<BatchRef> {
  await db.rawQuery(
    `INSERT INTO vault_entries (id, kek_name, kek_version, wrapped_dek, ciphertext, created_at, updated_at)
     SELECT u.id, ?, u.v, u.w, u.c, now(), now()
       FROM unnest(?::bigint[], ?::int[], ?::text[], ?::bytea[]) AS u(id, v, w, c)`,
    [kekName, batch.ids, batch.versions, batch.wrapped, batch.ciphertexts]
  )
  return {
    count: batch.ids.length,
    ids: batch.ids,
    kekVersions: [...new Set(batch.versions)].sort((a, b) => a - b),
  }
}
