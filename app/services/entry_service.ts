/*
|--------------------------------------------------------------------------
| Entry service
|--------------------------------------------------------------------------
|
| Creates, reads, rewrites and deletes envelope-encrypted vault entries.
| New writes always wrap under the latest KEK version (one `datakey` call
| gives a fresh DEK and its wrap). Reads go through the DEK cache.
|
| Ids are canonical decimal strings (the AAD binds the ciphertext to the
| decimal id, so "007" and "7" must never both reach it): anything that is
| not a positive bigint is simply an entry that does not exist.
|
*/
import { randomBytes } from 'node:crypto'
import { inject } from '@adonisjs/core'
import { Logger } from '@adonisjs/core/logger'
import db from '@adonisjs/lucid/services/db'
import { E_CIPHERTEXT_INVALID, E_ENTRY_CONFLICT, E_ENTRY_NOT_FOUND } from '#app/errors'
import { entryAad, openJson, sealJson, EnvelopeError } from '#crypto/envelope'
import { KEY_BYTES, NONCE_BYTES, type RandomBytes } from '#crypto/aead'
import { wrappedDekVersion } from '#crypto/wrapped_dek'
import { kmsError } from '#kms/error_codes'
import { KmsManager } from '#kms/kms_manager'
import { DekCache } from '#services/dek_cache'

/** What a write answers. */
export interface EntryRef {
  id: string
  kekName: string
  kekVersion: number
}

/** A decrypted entry. */
export interface Entry extends EntryRef {
  data: unknown
  createdAt: Date
  updatedAt: Date
  rotatedAt: Date | null
}

/** What one bulk insert batch wrote. */
export interface BatchRef {
  /** Rows written. */
  count: number
  /** Ids written, ascending. */
  ids: string[]
  /** KEK versions the DEKs were wrapped under (normally one). */
  kekVersions: number[]
}

/** Options of {@link EntryService.seed}. */
export interface SeedOptions {
  rows: number
  batchSize: number
  /** Builds the payload of the i-th row (0-based). */
  payload?: (index: number) => unknown
  /** Called after each batch with the rows written so far. */
  onProgress?: (done: number, total: number) => void
}

/** What {@link EntryService.seed} wrote. */
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

const MAX_BIGINT = 9223372036854775807n

/**
 * Attempts of one update before E_ENTRY_CONFLICT: each lost attempt means
 * another writer committed in between (a background move commits a row at
 * most once per pass), so a few always suffice unless clients fight.
 */
export const UPDATE_ATTEMPTS = 5

/**
 * The canonical form of an entry id, or null when it cannot be one.
 */
export function canonicalEntryId(id: string | number | bigint): string | null {
  const text = String(id).trim()
  if (!/^[0-9]{1,19}$/.test(text)) return null
  const value = BigInt(text)
  if (value < 1n || value > MAX_BIGINT) return null
  return value.toString()
}

/**
 * Envelope-encrypted entry storage.
 */
@inject()
export class EntryService {
  /** Randomness for DEKs and nonces (swappable in tests). */
  random: RandomBytes = randomBytes

  constructor(
    private kms: KmsManager,
    private cache: DekCache,
    private logger?: Logger
  ) {}

  /**
   * Stores `data` under a fresh DEK wrapped by the KEK's latest version.
   * An unknown KEK fails before anything is written.
   */
  async create(kekName: string, data: unknown): Promise<EntryRef> {
    const generation = this.cache.generation
    const driver = await this.kms.forKek(kekName)
    const dataKey = await driver.generateDataKey(kekName)
    try {
      const { rows } = await db.rawQuery(
        `SELECT nextval(pg_get_serial_sequence('vault_entries', 'id'))::text AS id`
      )
      const id = String(rows[0].id)
      const ciphertext = sealJson(dataKey.plaintext, data, entryAad(id, kekName), this.random)
      await db.rawQuery(
        `INSERT INTO vault_entries (id, kek_name, kek_version, wrapped_dek, ciphertext, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, now(), now())`,
        [id, kekName, dataKey.version, dataKey.wrapped, ciphertext]
      )
      this.cache.set(id, dataKey.wrapped, dataKey.plaintext, generation)
      this.logger?.debug({ id, kekName, kekVersion: dataKey.version }, 'entry created')
      return { id, kekName, kekVersion: dataKey.version }
    } finally {
      dataKey.plaintext.fill(0)
    }
  }

  /**
   * Reads and decrypts an entry. A wrapped DEK or ciphertext that does not
   * authenticate (tampered, or moved from another row) is E_CIPHERTEXT_INVALID.
   */
  async find(id: string): Promise<Entry> {
    const key = this.#id(id)
    const row = await db
      .from('vault_entries')
      .where('id', key)
      .select(
        'id',
        'kek_name',
        'kek_version',
        'wrapped_dek',
        'ciphertext',
        'created_at',
        'updated_at',
        'rotated_at'
      )
      .first()
    if (!row) throw new E_ENTRY_NOT_FOUND([key])
    let dek = this.cache.get(key, row.wrapped_dek)
    if (!dek) {
      const generation = this.cache.generation
      const driver = await this.kms.forKek(row.kek_name)
      ;[dek] = await driver.unwrap(row.kek_name, [row.wrapped_dek])
      this.cache.set(key, row.wrapped_dek, dek, generation)
    }
    let data: unknown
    try {
      data = openJson(dek, row.ciphertext, entryAad(key, row.kek_name))
    } catch (error) {
      if (error instanceof EnvelopeError || error instanceof SyntaxError) {
        this.cache.forgetRow(key)
        throw new E_CIPHERTEXT_INVALID([`entry ${key}: ${error.message}`])
      }
      throw error
    } finally {
      dek.fill(0)
    }
    return {
      id: key,
      kekName: row.kek_name,
      kekVersion: row.kek_version,
      data,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      rotatedAt: row.rotated_at,
    }
  }

  /**
   * Rewrites an entry's data under a fresh DEK wrapped by the latest version
   * of the row's KEK.
   *
   * The write is a compare-and-swap on what was read (kek_name and
   * wrapped_dek): a rotation or re-encrypt that moved the row after the read
   * makes the UPDATE match nothing, and the write starts over from a fresh
   * read (new KEK name, new data key), at most {@link UPDATE_ATTEMPTS}
   * times; then E_ENTRY_CONFLICT (409). So no write can ever put a DEK
   * wrapped by one KEK into a row labelled with another, nor a DEK of an
   * old version under a rotation that already moved the row.
   */
  async update(id: string, data: unknown): Promise<EntryRef> {
    const key = this.#id(id)
    for (let attempt = 1; attempt <= UPDATE_ATTEMPTS; attempt++) {
      const row = await db
        .from('vault_entries')
        .where('id', key)
        .select('kek_name', 'wrapped_dek')
        .first()
      if (!row) throw new E_ENTRY_NOT_FOUND([key])
      const written = await this.#updateIfUnchanged(key, row.kek_name, row.wrapped_dek, data)
      if (written) return written
      this.logger?.debug({ id: key, attempt }, 'entry update lost its compare-and-swap; retrying')
    }
    throw new E_ENTRY_CONFLICT([key])
  }

  /**
   * One attempt of {@link update}: seals under a fresh data key of `kekName`
   * and writes only if the row still holds `readWrapped` under `kekName`.
   * Null when it did not (the row moved or was rewritten meanwhile).
   */
  async #updateIfUnchanged(
    key: string,
    kekName: string,
    readWrapped: string,
    data: unknown
  ): Promise<EntryRef | null> {
    const generation = this.cache.generation
    const driver = await this.kms.forKek(kekName)
    const dataKey = await driver.generateDataKey(kekName)
    try {
      const ciphertext = sealJson(dataKey.plaintext, data, entryAad(key, kekName), this.random)
      const updated = await db
        .from('vault_entries')
        .where('id', key)
        .where('kek_name', kekName)
        .where('wrapped_dek', readWrapped)
        .update({
          wrapped_dek: dataKey.wrapped,
          kek_version: dataKey.version,
          ciphertext,
          updated_at: new Date(),
        })
      if (affected(updated) === 0) return null
      this.cache.forgetRow(key)
      this.cache.set(key, dataKey.wrapped, dataKey.plaintext, generation)
      this.logger?.debug({ id: key, kekName, kekVersion: dataKey.version }, 'entry updated')
      return { id: key, kekName, kekVersion: dataKey.version }
    } finally {
      dataKey.plaintext.fill(0)
    }
  }

  /**
   * Deletes an entry. Deliberately by id alone (no compare-and-swap): the
   * caller asks for the entry to be gone whatever KEK wraps it now, and a
   * rotation or re-encrypt that meets the deleted row only finds nothing to
   * update (counted skipped) — no write can strand a row that no longer
   * exists.
   */
  async delete(id: string): Promise<void> {
    const key = this.#id(id)
    const deleted = await db.from('vault_entries').where('id', key).delete()
    this.cache.forgetRow(key)
    if (affected(deleted) === 0) throw new E_ENTRY_NOT_FOUND([key])
    this.logger?.debug({ id: key }, 'entry deleted')
  }

  /**
   * Inserts many entries of one KEK at once: DEKs generated locally, ONE
   * KMS wrap call, ids reserved from the sequence, ONE multi-row INSERT.
   * Nothing is cached (bulk loads would only evict hot DEKs).
   */
  async createBatch(kekName: string, values: unknown[]): Promise<BatchRef> {
    if (values.length === 0) return { count: 0, ids: [], kekVersions: [] }
    return this.#insertBatch(kekName, await this.#prepareBatch(kekName, values))
  }

  /**
   * Bulk-loads `rows` entries in batches of `batchSize` (demo data, load
   * tests). The KEK must exist. Batches are pipelined: the next batch is
   * wrapped and sealed while Postgres inserts the previous one.
   */
  async seed(kekName: string, options: SeedOptions): Promise<SeedResult> {
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
        const batch = await this.#prepareBatch(kekName, values)
        await inserting
        inserting = this.#insertBatch(kekName, batch).then((ref) => {
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
    this.logger?.info({ kekName, rows: done, batches, firstId, lastId }, 'entries seeded')
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
  async #prepareBatch(kekName: string, values: unknown[]): Promise<PreparedBatch> {
    const n = values.length
    const driver = await this.kms.forKek(kekName)
    const pool = this.random(KEY_BYTES * n)
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
      const nonces = this.random(NONCE_BYTES * n)
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
  async #insertBatch(kekName: string, batch: PreparedBatch): Promise<BatchRef> {
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

  /** Canonical id, or E_ENTRY_NOT_FOUND. */
  #id(id: string): string {
    const key = canonicalEntryId(id)
    if (!key) throw new E_ENTRY_NOT_FOUND([String(id).slice(0, 40)])
    return key
  }
}

/** Rows affected by a knex update/delete (a number, or an array on some clients). */
function affected(result: unknown): number {
  return Number(Array.isArray(result) ? (result[0] ?? 0) : result)
}
