/*
|--------------------------------------------------------------------------
| Local keyring store
|--------------------------------------------------------------------------
|
| Persists local-KMS keyrings in Postgres (`kms_keys`), each version's key
| sealed with AES-256-GCM under the root key (KMS_ROOT_KEY), the key name
| and version bound as associated data. Changes run under a row lock, so
| two processes rotating at once get versions n+1 and n+2, never two n+1.
|
*/
import type { Database } from '@adonisjs/lucid/database'
import type { QueryClientContract } from '@adonisjs/lucid/types/database'
import { seal, open, NONCE_BYTES, type RandomBytes } from '#crypto/aead'
import { KeyringError, type Keyring, type KeyVersion } from '#crypto/keyring'

interface StoredVersion {
  createdAt: number
  sealedKey: string
}

interface StoredRing extends Omit<Keyring, 'versions'> {
  versions: Record<string, StoredVersion>
}

/**
 * Loads and saves keyrings, sealing key material under the root key.
 */
export class LocalKeyringStore {
  #unsealed = new Map<string, Buffer>()

  constructor(
    private db: Database,
    private rootKey: Buffer,
    private random: RandomBytes,
    private table = 'kms_keys'
  ) {
    if (rootKey.length !== 32) throw new RangeError('the KMS root key must be 32 bytes')
  }

  /**
   * Reads a keyring, null when unknown.
   */
  async load(
    name: string,
    client: QueryClientContract = this.db.connection()
  ): Promise<Keyring | null> {
    const row = await client.from(this.table).where('name', name).select('ring').first()
    return row ? this.#unseal(row.ring as StoredRing) : null
  }

  /**
   * Names of all keyrings.
   */
  async names(): Promise<string[]> {
    const rows = await this.db.from(this.table).select('name').orderBy('name')
    return rows.map((r) => r.name as string)
  }

  /**
   * Inserts a new keyring; throws KeyringError(… exists) when the name is taken.
   */
  async insert(ring: Keyring): Promise<void> {
    const result = await this.db.rawQuery(
      `INSERT INTO ${this.table} (name, ring, created_at, updated_at) VALUES (?, ?, now(), now())
       ON CONFLICT (name) DO NOTHING`,
      [ring.name, JSON.stringify(this.#seal(ring))]
    )
    if (result.rowCount === 0) throw new KeyringError(`key "${ring.name}" already exists`, 409)
  }

  /**
   * Changes a keyring under a row lock; `change` returns the new keyring.
   * Returns null when the keyring does not exist.
   */
  async update(name: string, change: (ring: Keyring) => Keyring): Promise<Keyring | null> {
    return this.db.transaction(async (trx) => {
      const row = await trx.from(this.table).where('name', name).forUpdate().select('ring').first()
      if (!row) return null
      const next = change(this.#unseal(row.ring as StoredRing))
      await trx
        .from(this.table)
        .where('name', name)
        .update({ ring: JSON.stringify(this.#seal(next)), updated_at: new Date() })
      return next
    })
  }

  /**
   * Deletes a keyring (Vault's DELETE keys/:name).
   */
  async delete(name: string): Promise<boolean> {
    const count = await this.db.from(this.table).where('name', name).delete()
    return Number(Array.isArray(count) ? count[0] : count) > 0
  }

  #aad(name: string, version: number | string) {
    return Buffer.from(`rewrap/kms/v1\0${name}\0${version}`, 'utf8')
  }

  #seal(ring: Keyring): StoredRing {
    const versions: Record<string, StoredVersion> = {}
    for (const [version, value] of Object.entries(ring.versions)) {
      const sealed = seal(
        this.rootKey,
        this.random(NONCE_BYTES),
        value.key,
        this.#aad(ring.name, version)
      )
      versions[version] = { createdAt: value.createdAt, sealedKey: sealed.toString('base64') }
      this.#unsealed.set(versions[version].sealedKey, value.key)
    }
    return { ...ring, versions }
  }

  #unseal(stored: StoredRing): Keyring {
    const versions: Record<number, KeyVersion> = {}
    for (const [version, value] of Object.entries(stored.versions)) {
      let key = this.#unsealed.get(value.sealedKey)
      if (!key) {
        const opened = open(
          this.rootKey,
          Buffer.from(value.sealedKey, 'base64'),
          this.#aad(stored.name, version)
        )
        if (!opened) {
          throw new KeyringError(
            `key material of "${stored.name}" does not open with the root key`,
            500
          )
        }
        key = opened
        if (this.#unsealed.size > 10_000) this.#unsealed.clear()
        this.#unsealed.set(value.sealedKey, key)
      }
      versions[Number(version)] = { key, createdAt: value.createdAt }
    }
    return { ...stored, versions }
  }
}
