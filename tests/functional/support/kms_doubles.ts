/*
|--------------------------------------------------------------------------
| KMS test doubles
|--------------------------------------------------------------------------
|
| Swapped into the container in place of the real KmsManager:
| - CountingDriver wraps a real driver and counts calls (and remembers
|   every DEK it sees as a secret for the log audit);
| - DownDriver fails every call with E_KMS_UNAVAILABLE (KMS outage).
|
*/
import app from '@adonisjs/core/services/app'
import { E_KMS_UNAVAILABLE } from '#app/errors'
import type { DataKey, KekConfig, KekInfo, KmsDriver, RewrapResult } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { rememberSecret } from '#tests/helpers/secrets'

/**
 * Delegates to a real driver and counts calls per method.
 */
export class CountingDriver implements KmsDriver {
  calls: Record<string, number> = {}

  constructor(private inner: KmsDriver) {}

  #count(method: string) {
    this.calls[method] = (this.calls[method] ?? 0) + 1
  }

  createKey(name: string): Promise<KekInfo> {
    this.#count('createKey')
    return this.inner.createKey(name)
  }
  readKey(name: string): Promise<KekInfo | null> {
    this.#count('readKey')
    return this.inner.readKey(name)
  }
  listKeys(): Promise<string[]> {
    this.#count('listKeys')
    return this.inner.listKeys()
  }
  rotateKey(name: string): Promise<KekInfo> {
    this.#count('rotateKey')
    return this.inner.rotateKey(name)
  }
  configureKey(name: string, config: KekConfig): Promise<KekInfo> {
    this.#count('configureKey')
    return this.inner.configureKey(name, config)
  }
  trimKey(name: string, minAvailableVersion: number): Promise<KekInfo> {
    this.#count('trimKey')
    return this.inner.trimKey(name, minAvailableVersion)
  }
  async generateDataKey(name: string): Promise<DataKey> {
    this.#count('generateDataKey')
    const key = await this.inner.generateDataKey(name)
    rememberSecret(key.plaintext, 'generated DEK')
    return key
  }
  wrap(name: string, deks: Buffer[]): Promise<string[]> {
    this.#count('wrap')
    return this.inner.wrap(name, deks)
  }
  async unwrap(name: string, wrapped: string[]): Promise<Buffer[]> {
    this.#count('unwrap')
    const deks = await this.inner.unwrap(name, wrapped)
    deks.forEach((dek) => rememberSecret(Buffer.from(dek), 'unwrapped DEK'))
    return deks
  }
  rewrap(name: string, wrapped: string[], version?: number): Promise<RewrapResult[]> {
    this.#count('rewrap')
    return this.inner.rewrap(name, wrapped, version)
  }
  close(): Promise<void> {
    return Promise.resolve()
  }
}

/**
 * A KMS that is down: every call fails with E_KMS_UNAVAILABLE.
 */
export class DownDriver implements KmsDriver {
  calls = 0

  #fail(): never {
    this.calls++
    throw new E_KMS_UNAVAILABLE([], { cause: new Error('connect ECONNREFUSED (test double)') })
  }
  async createKey(): Promise<KekInfo> {
    this.#fail()
  }
  async readKey(): Promise<KekInfo | null> {
    this.#fail()
  }
  async listKeys(): Promise<string[]> {
    this.#fail()
  }
  async rotateKey(): Promise<KekInfo> {
    this.#fail()
  }
  async configureKey(): Promise<KekInfo> {
    this.#fail()
  }
  async trimKey(): Promise<KekInfo> {
    this.#fail()
  }
  async generateDataKey(): Promise<DataKey> {
    this.#fail()
  }
  async wrap(): Promise<string[]> {
    this.#fail()
  }
  async unwrap(): Promise<Buffer[]> {
    this.#fail()
  }
  async rewrap(): Promise<RewrapResult[]> {
    this.#fail()
  }
  async close() {}
}

/**
 * Swaps the container's KmsManager for one whose only driver is `driver`;
 * returns the restore function.
 */
export function swapKms(driver: KmsDriver): () => void {
  const manager = new KmsManager({ default: 'double', drivers: { double: () => driver } })
  app.container.swap(KmsManager, () => manager)
  return () => app.container.restore(KmsManager)
}

/**
 * The real driver of a KEK (from the container's real manager).
 */
export async function realDriver(kekName: string): Promise<KmsDriver> {
  const manager = await app.container.make(KmsManager)
  return manager.forKek(kekName)
}
