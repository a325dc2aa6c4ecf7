/*
|--------------------------------------------------------------------------
| Local KMS driver
|--------------------------------------------------------------------------
|
| The embedded default: keyrings in Postgres (LocalKeyringStore), the
| Transit engine of app/crypto/keyring.ts in-process. Same `vault:vN:`
| format and semantics as Vault.
|
*/
import { randomBytes } from 'node:crypto'
import { E_KEK_EXISTS, E_KEK_NOT_FOUND } from '#app/errors'
import { KEY_BYTES, type RandomBytes } from '#crypto/aead'
import * as keyring from '#crypto/keyring'
import { configureKeyring, trimKeyring } from '#crypto/keyring_policy'
import type { DataKey, KekConfig, KekInfo, KmsDriver, RewrapResult } from '#kms/contract'
import { classifyKmsError, kmsError } from '#kms/error_codes'
import type { LocalKeyringStore } from '#kms/local_keyring_store'
import { keyringToKekInfo } from '#kms/kek_info'

/** Options of the local driver. */
export interface LocalDriverOptions {
  store: LocalKeyringStore
  /** Unix seconds; injected for tests. */
  now?: () => number
  random?: RandomBytes
}

/**
 * KMS driver backed by the local keyring store.
 */
export class LocalKmsDriver implements KmsDriver {
  #store: LocalKeyringStore
  #now: () => number
  #random: RandomBytes

  constructor(options: LocalDriverOptions) {
    this.#store = options.store
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000))
    this.#random = options.random ?? randomBytes
  }

  async createKey(name: string): Promise<KekInfo> {
    const ring = keyring.createKeyring(name, this.#random(KEY_BYTES), this.#now())
    try {
      await this.#store.insert(ring)
    } catch (error) {
      if (error instanceof keyring.KeyringError && error.status === 409)
        throw new E_KEK_EXISTS([name])
      throw error
    }
    return keyringToKekInfo(keyring.keyringInfo(ring))
  }

  async readKey(name: string): Promise<KekInfo | null> {
    const ring = await this.#store.load(name)
    return ring ? keyringToKekInfo(keyring.keyringInfo(ring)) : null
  }

  async listKeys(): Promise<string[]> {
    return [...(await this.#store.names())].sort()
  }

  async rotateKey(name: string): Promise<KekInfo> {
    return this.#change(name, (ring) =>
      keyring.rotateKeyring(ring, this.#random(KEY_BYTES), this.#now())
    )
  }

  async configureKey(name: string, config: KekConfig): Promise<KekInfo> {
    return this.#change(name, (ring) => configureKeyring(ring, config))
  }

  async trimKey(name: string, minAvailableVersion: number): Promise<KekInfo> {
    return this.#change(name, (ring) => trimKeyring(ring, minAvailableVersion))
  }

  async generateDataKey(name: string): Promise<DataKey> {
    const ring = await this.#ring(name)
    const plaintext = this.#random(KEY_BYTES)
    const wrapped = this.#call(name, () => keyring.encrypt(ring, plaintext, this.#random))
    return { plaintext, wrapped, version: ring.latestVersion }
  }

  async wrap(name: string, deks: Buffer[]): Promise<string[]> {
    const ring = await this.#ring(name)
    return deks.map((dek) => this.#call(name, () => keyring.encrypt(ring, dek, this.#random)))
  }

  async unwrap(name: string, wrapped: string[]): Promise<Buffer[]> {
    const ring = await this.#ring(name)
    return wrapped.map((value) => this.#call(name, () => keyring.decrypt(ring, value)))
  }

  async rewrap(name: string, wrapped: string[], version?: number): Promise<RewrapResult[]> {
    const ring = await this.#ring(name)
    const target = this.#call(name, () => keyring.encryptionVersion(ring, version))
    return wrapped.map((value): RewrapResult => {
      try {
        return {
          ok: true,
          wrapped: keyring.rewrap(ring, value, this.#random, target),
          version: target,
        }
      } catch (error) {
        const message = error instanceof keyring.KeyringError ? error.message : 'rewrap failed'
        return { ok: false, code: classifyKmsError(message), message }
      }
    })
  }

  async close() {}

  async #ring(name: string) {
    const ring = await this.#store.load(name)
    if (!ring) throw new E_KEK_NOT_FOUND([name])
    return ring
  }

  async #change(name: string, change: (ring: keyring.Keyring) => keyring.Keyring) {
    const next = await this.#store.update(name, (ring) => this.#call(name, () => change(ring)))
    if (!next) throw new E_KEK_NOT_FOUND([name])
    return keyringToKekInfo(keyring.keyringInfo(next))
  }

  #call<T>(name: string, fn: () => T): T {
    try {
      return fn()
    } catch (error) {
      if (error instanceof keyring.KeyringError) {
        throw kmsError(classifyKmsError(error.message, error.status), error.message, name)
      }
      throw error
    }
  }
}
