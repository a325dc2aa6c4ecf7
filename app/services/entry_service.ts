/*
|--------------------------------------------------------------------------
| Entry service
|--------------------------------------------------------------------------
|
| Creates, reads, rewrites and deletes envelope-encrypted vault entries.
| New writes always wrap under the latest KEK version (one `datakey` call
| gives a fresh DEK and its wrap). Reads go through the DEK cache.
|
*/
import { randomBytes } from 'node:crypto'
import { inject } from '@adonisjs/core'
import db from '@adonisjs/lucid/services/db'
import { E_CIPHERTEXT_INVALID, E_ENTRY_NOT_FOUND } from '#app/errors'
import { entryAad, openJson, sealJson, EnvelopeError } from '#crypto/envelope'
import type { RandomBytes } from '#crypto/aead'
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

/**
 * Envelope-encrypted entry storage.
 */
@inject()
export class EntryService {
  /** Randomness for nonces (swappable in tests). */
  random: RandomBytes = randomBytes

  constructor(
    private kms: KmsManager,
    private cache: DekCache
  ) {}

  /**
   * Stores `data` under a fresh DEK wrapped by the KEK's latest version.
   */
  async create(kekName: string, data: unknown): Promise<EntryRef> {
    const driver = await this.kms.forKek(kekName)
    const dataKey = await driver.generateDataKey(kekName)
    try {
      const { rows } = await db.rawQuery(
        `SELECT nextval(pg_get_serial_sequence('vault_entries', 'id')) AS id`
      )
      const id = String(rows[0].id)
      const ciphertext = sealJson(dataKey.plaintext, data, entryAad(id, kekName), this.random)
      await db.rawQuery(
        `INSERT INTO vault_entries (id, kek_name, kek_version, wrapped_dek, ciphertext, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, now(), now())`,
        [id, kekName, dataKey.version, dataKey.wrapped, ciphertext]
      )
      this.cache.set(id, dataKey.wrapped, dataKey.plaintext)
      return { id, kekName, kekVersion: dataKey.version }
    } finally {
      dataKey.plaintext.fill(0)
    }
  }

  /**
   * Reads and decrypts an entry.
   */
  async find(id: string): Promise<Entry> {
    const row = await db
      .from('vault_entries')
      .where('id', id)
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
    if (!row) throw new E_ENTRY_NOT_FOUND([id])
    const key = String(row.id)
    let dek = this.cache.get(key, row.wrapped_dek)
    if (!dek) {
      const driver = await this.kms.forKek(row.kek_name)
      ;[dek] = await driver.unwrap(row.kek_name, [row.wrapped_dek])
      this.cache.set(key, row.wrapped_dek, dek)
    }
    let data: unknown
    try {
      data = openJson(dek, row.ciphertext, entryAad(key, row.kek_name))
    } catch (error) {
      if (error instanceof EnvelopeError)
        throw new E_CIPHERTEXT_INVALID([`entry ${key}: ${error.message}`])
      throw error
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
   * Rewrites an entry's data under a fresh DEK wrapped by the latest version.
   * A rotation running meanwhile sees the new wrap and skips the row.
   */
  async update(id: string, data: unknown): Promise<EntryRef> {
    const row = await db.from('vault_entries').where('id', id).select('kek_name').first()
    if (!row) throw new E_ENTRY_NOT_FOUND([id])
    const kekName: string = row.kek_name
    const driver = await this.kms.forKek(kekName)
    const dataKey = await driver.generateDataKey(kekName)
    try {
      const ciphertext = sealJson(dataKey.plaintext, data, entryAad(id, kekName), this.random)
      const updated = await db.from('vault_entries').where('id', id).update({
        wrapped_dek: dataKey.wrapped,
        kek_version: dataKey.version,
        ciphertext,
        updated_at: new Date(),
      })
      if (Number(updated[0] ?? updated) === 0) throw new E_ENTRY_NOT_FOUND([id])
      this.cache.forgetRow(id)
      this.cache.set(id, dataKey.wrapped, dataKey.plaintext)
      return { id, kekName, kekVersion: dataKey.version }
    } finally {
      dataKey.plaintext.fill(0)
    }
  }

  /**
   * Deletes an entry.
   */
  async delete(id: string): Promise<void> {
    const deleted = await db.from('vault_entries').where('id', id).delete()
    this.cache.forgetRow(id)
    if (Number(deleted[0] ?? deleted) === 0) throw new E_ENTRY_NOT_FOUND([id])
  }
}
