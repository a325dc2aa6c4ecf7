/*
|--------------------------------------------------------------------------
| Vault KMS driver
|--------------------------------------------------------------------------
|
| HashiCorp Vault Transit through the node-vault client. Works against a
| real Vault (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE) and against
| `node ace kms:serve`. Batch calls are chunked and run with bounded
| concurrency; every batch item is checked for its own error; 429, 5xx,
| timeouts and network errors are retried with backoff and jitter,
| honouring Retry-After, a bounded number of times (which failures, and
| the E_* error each becomes: vault_failures.ts).
|
*/
import vault from 'node-vault'
import { E_KEK_EXISTS } from '#app/errors'
import type { DataKey, KekConfig, KekInfo, KmsDriver, RewrapResult } from '#kms/contract'
import { classifyKmsError, kmsError } from '#kms/error_codes'
import { keyringToKekInfo } from '#kms/kek_info'
import { defaultRetryDeps, withRetry, type RetryDeps, type RetryOptions } from '#kms/retry'
import { mapLimited } from '#app/utils/async'
import { vaultError, vaultRetryDecision } from '#kms/drivers/vault_failures'
import { assertSecureEndpoint, fetchTransport } from '#kms/vault_transport'

/** Options of the vault driver. */
export interface VaultDriverOptions {
  endpoint: string
  token: string
  namespace?: string
  /** Transit mount path, `transit` by default. */
  mount?: string
  /** Per-request timeout. */
  timeoutMs?: number
  /** Items per batch request. */
  batchSize?: number
  /** Batch requests in flight at once for one call. */
  concurrency?: number
  retry?: RetryOptions
  /** Injected for tests. */
  retryDeps?: RetryDeps
  /** Accept a plain http:// endpoint on a non-loopback host (VAULT_ALLOW_INSECURE_HTTP). */
  allowInsecureHttp?: boolean
}

const DEFAULT_RETRY: RetryOptions = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 5_000 }

/**
 * KMS driver speaking the Vault Transit HTTP API.
 */
export class VaultKmsDriver implements KmsDriver {
  #client: ReturnType<typeof vault>
  #mount: string
  #batchSize: number
  #concurrency: number
  #retry: RetryOptions
  #retryDeps: RetryDeps
  #known = new Set<string>()

  constructor(options: VaultDriverOptions) {
    assertSecureEndpoint(options.endpoint, options.allowInsecureHttp)
    this.#client = vault({
      'endpoint': options.endpoint,
      'token': options.token,
      'namespace': options.namespace,
      'apiVersion': 'v1',
      'request-promise': fetchTransport(options.timeoutMs ?? 30_000),
      // LIST as `GET …?list=1` (Vault accepts both; Node's HTTP server has no LIST verb).
      'noCustomHTTPVerbs': true,
      // node-vault's debug output would print request bodies (DEKs): never enable it.
      'debug': () => {},
    } as any)
    this.#mount = (options.mount ?? 'transit').replace(/^\/+|\/+$/g, '')
    this.#batchSize = options.batchSize ?? 1000
    this.#concurrency = options.concurrency ?? 4
    this.#retry = options.retry ?? DEFAULT_RETRY
    this.#retryDeps = options.retryDeps ?? defaultRetryDeps
  }

  async createKey(name: string): Promise<KekInfo> {
    if (await this.readKey(name)) throw new E_KEK_EXISTS([name])
    await this.#write(name, `keys/${this.#seg(name)}`, { type: 'aes256-gcm96' }, false)
    return this.#mustRead(name)
  }

  async readKey(name: string): Promise<KekInfo | null> {
    try {
      const response = await this.#send(
        name,
        () => this.#client.read(this.#path(`keys/${this.#seg(name)}`)),
        true
      )
      this.#known.add(name)
      return keyringToKekInfo(response.data)
    } catch (error) {
      if ((error as any)?.code === 'E_KEK_NOT_FOUND') return null
      throw error
    }
  }

  async listKeys(): Promise<string[]> {
    try {
      const response = await this.#send('', () => this.#client.list(this.#path('keys')), true)
      const keys = response?.data?.keys
      return Array.isArray(keys) ? keys.map(String).sort() : []
    } catch (error) {
      // Vault answers an empty list with 404 {"errors":[]}.
      if ((error as any)?.code === 'E_KEK_NOT_FOUND') return []
      throw error
    }
  }

  async rotateKey(name: string): Promise<KekInfo> {
    await this.#write(name, `keys/${this.#seg(name)}/rotate`, {}, false)
    return this.#mustRead(name)
  }

  async configureKey(name: string, config: KekConfig): Promise<KekInfo> {
    const body: Record<string, number> = {}
    if (config.minDecryptionVersion !== undefined)
      body.min_decryption_version = config.minDecryptionVersion
    if (config.minEncryptionVersion !== undefined)
      body.min_encryption_version = config.minEncryptionVersion
    await this.#write(name, `keys/${this.#seg(name)}/config`, body, true)
    return this.#mustRead(name)
  }

  async trimKey(name: string, minAvailableVersion: number): Promise<KekInfo> {
    await this.#write(
      name,
      `keys/${this.#seg(name)}/trim`,
      { min_available_version: minAvailableVersion },
      true
    )
    return this.#mustRead(name)
  }

  async generateDataKey(name: string): Promise<DataKey> {
    const response = await this.#write(
      name,
      `datakey/plaintext/${this.#seg(name)}`,
      { bits: 256 },
      true
    )
    const data = response.data
    return {
      plaintext: Buffer.from(data.plaintext, 'base64'),
      wrapped: data.ciphertext,
      version: Number(data.key_version),
    }
  }

  async wrap(name: string, deks: Buffer[]): Promise<string[]> {
    // Vault's encrypt creates unknown keys (upsert): make sure the KEK exists.
    if (!this.#known.has(name)) await this.#mustRead(name)
    return this.#batch(name, deks, async (chunk) => {
      const results = await this.#batchCall(name, 'encrypt', {
        batch_input: chunk.map((dek) => ({ plaintext: dek.toString('base64') })),
      })
      return results.map((item) => {
        if (item.error || !item.ciphertext) throw this.#itemError(name, item.error)
        return item.ciphertext as string
      })
    })
  }

  async unwrap(name: string, wrapped: string[]): Promise<Buffer[]> {
    return this.#batch(name, wrapped, async (chunk) => {
      const results = await this.#batchCall(name, 'decrypt', {
        batch_input: chunk.map((ciphertext) => ({ ciphertext })),
      })
      return results.map((item) => {
        if (item.error || typeof item.plaintext !== 'string')
          throw this.#itemError(name, item.error)
        return Buffer.from(item.plaintext, 'base64')
      })
    })
  }

  async rewrap(name: string, wrapped: string[], version?: number): Promise<RewrapResult[]> {
    return this.#batch(name, wrapped, async (chunk) => {
      const body: Record<string, unknown> = {
        batch_input: chunk.map((ciphertext) =>
          version ? { ciphertext, key_version: version } : { ciphertext }
        ),
      }
      if (version) body.key_version = version
      const results = await this.#batchCall(name, 'rewrap', body)
      return results.map((item): RewrapResult => {
        if (item.error || typeof item.ciphertext !== 'string') {
          const message = String(item.error || 'no ciphertext in result')
          return { ok: false, code: classifyKmsError(message), message }
        }
        return {
          ok: true,
          wrapped: item.ciphertext,
          version: Number(item.key_version ?? versionOf(item.ciphertext)),
        }
      })
    })
  }

  async close() {}

  /**
   * One batch request; answers the `batch_results`. Vault answers 400 for an
   * encrypt/decrypt batch with a failed item but still returns the results:
   * those are returned so each item is checked on its own.
   */
  async #batchCall(name: string, op: string, body: Record<string, unknown>): Promise<any[]> {
    try {
      const response = await this.#write(name, `${op}/${this.#seg(name)}`, body, true)
      return this.#results(name, response, body)
    } catch (error) {
      const results = (error as any)?.batchResults
      if (Array.isArray(results)) return results
      throw error
    }
  }

  #results(name: string, response: any, body: Record<string, unknown>) {
    const results = response?.data?.batch_results
    const expected = (body.batch_input as unknown[]).length
    if (!Array.isArray(results) || results.length !== expected) {
      throw kmsError('E_KMS_REJECTED', 'batch response does not match the request', name)
    }
    return results
  }

  #itemError(name: string, message: unknown) {
    const text = String(message || 'batch item failed')
    return kmsError(classifyKmsError(text), text, name)
  }

  async #batch<In, Out>(
    name: string,
    items: In[],
    run: (chunk: In[]) => Promise<Out[]>
  ): Promise<Out[]> {
    const chunks: In[][] = []
    for (let i = 0; i < items.length; i += this.#batchSize)
      chunks.push(items.slice(i, i + this.#batchSize))
    const out = await mapLimited(chunks, this.#concurrency, run)
    void name
    return out.flat()
  }

  async #mustRead(name: string): Promise<KekInfo> {
    const info = await this.readKey(name)
    if (!info) throw kmsError('E_KEK_NOT_FOUND', 'unknown key', name)
    return info
  }

  #write(name: string, path: string, body: Record<string, unknown>, idempotent: boolean) {
    return this.#send(name, () => this.#client.write(this.#path(path), body), idempotent)
  }

  /**
   * Sends with retries (vault_failures.ts says which failures are retried)
   * and turns failures into E_* errors.
   */
  async #send(name: string, call: () => Promise<any>, idempotent: boolean): Promise<any> {
    try {
      return await withRetry(
        () => call(),
        (error) => vaultRetryDecision(error, idempotent),
        this.#retry,
        this.#retryDeps
      )
    } catch (error) {
      throw vaultError(name, error)
    }
  }

  #path(path: string) {
    return `${this.#mount}/${path}`
  }

  #seg(name: string) {
    return encodeURIComponent(name)
  }
}

function versionOf(ciphertext: string) {
  return Number(/^vault:v(\d+):/.exec(ciphertext)?.[1] ?? 0)
}
