/*
|--------------------------------------------------------------------------
| Azure Key Vault KMS driver
|--------------------------------------------------------------------------
|
| A KEK is a Key Vault key; its Rewrap versions are native key versions,
| each tagged `rewrap-version=N` (azure_versions.ts). Rotate creates a new
| version of the key (createKey on an existing name); wrap / unwrap are
| wrapKey / unwrapKey on a named version (RSA-OAEP-256 for RSA keys in a
| vault, A256KW for oct-HSM keys in a Managed HSM); retire disables the old
| versions and unretire enables them again. Key Vault cannot delete one
| version, so trim is refused (E_TRIM_UNSUPPORTED).
|
| Key Vault has no rewrap: a rewrap is unwrap (old version) + wrap (new
| version) in this process, the DEK held in memory for that one item and
| zeroed right after. Unlike Vault's and AWS's server-side rewrap, the DEK
| crosses the wire twice (TLS) and costs two operations of the vault's
| quota. Every request takes a token from a requests/s budget shared by the
| driver's concurrent calls; 429 and 503 are retried after Retry-After.
|
*/
import { randomBytes } from 'node:crypto'
import { E_KEK_EXISTS, E_KMS_CONFIG, E_TRIM_UNSUPPORTED } from '#app/errors'
import { mapLimited } from '#app/utils/async'
import type { DataKey, KekConfig, KekInfo, KmsDriver, RewrapResult } from '#kms/contract'
import { kmsError, type KmsErrorCode } from '#kms/error_codes'
import { RequestBudget } from '#kms/request_budget'
import { defaultRetryDeps, withRetry, type RetryDeps, type RetryOptions } from '#kms/retry'
import { AzureClients, type TokenCredential } from '#kms/drivers/azure_client'
import { azureDetail, azureRetryDecision, classifyAzureError } from '#kms/drivers/azure_errors'
import { formatAzureWrapped, parseAzureWrapped } from '#kms/drivers/azure_wrapped'
import {
  KEK_TAG,
  mapVersions,
  retirementChanges,
  tagVersion,
  toKekInfo,
  VERSION_TAG,
  type KeyVersionProperties,
  type MappedVersion,
  type VersionMap,
} from '#kms/drivers/azure_versions'

/** Key types the driver creates, and the wrap algorithm each uses. */
export const AZURE_KEY_TYPES = {
  'RSA': 'RSA-OAEP-256',
  'RSA-HSM': 'RSA-OAEP-256',
  'oct-HSM': 'A256KW',
} as const

/** Options of the azure-keyvault driver. */
export interface AzureKeyVaultDriverOptions {
  /** https://<vault>.vault.azure.net or https://<hsm>.managedhsm.azure.net (AZURE_KEYVAULT_URL). */
  vaultUrl: string
  /** A static bearer token (the local stand-in, tests); else DefaultAzureCredential. */
  token?: string
  credential?: TokenCredential
  /** PEM of an extra CA to trust (the stand-in's test CA). */
  ca?: string
  /** `RSA` (default), `RSA-HSM` (Premium vault) or `oct-HSM` (Managed HSM). */
  keyType?: keyof typeof AZURE_KEY_TYPES
  /** RSA modulus bits (2048 default: the highest quota) or 256 for oct-HSM. */
  keySize?: number
  /** Requests in flight for one call. */
  concurrency?: number
  /** Requests/s budget across concurrent calls (a rewrap item costs 2). */
  requestsPerSecond?: number
  retry?: RetryOptions
  retryDeps?: RetryDeps
  /** How long a key's version list is reused for wrap/unwrap, ms. */
  versionCacheMs?: number
  /** Per-request timeout, ms. */
  timeoutMs?: number
  /** For a stand-in on a host that is not *.vault.azure.net. */
  disableChallengeResourceVerification?: boolean
}

/** Default share of the vault quota: 2,000 of 4,000 RSA-2048 operations per 10 s. */
export const DEFAULT_AZURE_REQUESTS_PER_SECOND = 200
const DEFAULT_RETRY: RetryOptions = { maxAttempts: 6, baseDelayMs: 250, maxDelayMs: 10_000 }
const ITEM_CODES = new Set<KmsErrorCode>(['E_CIPHERTEXT_INVALID', 'E_KEY_VERSION_DISALLOWED'])

/** A per-item failure of unwrap/rewrap (turned into a result or thrown). */
class ItemError extends Error {
  constructor(
    readonly code: KmsErrorCode,
    message: string
  ) {
    super(message)
  }
}

/**
 * KMS driver for Azure Key Vault and Managed HSM.
 */
export class AzureKeyVaultDriver implements KmsDriver {
  /** Key Vault deletes keys whole: kek:trim is refused up front. */
  readonly canTrimVersions = false
  readonly budget: RequestBudget
  #options: AzureKeyVaultDriverOptions
  #clients?: Promise<AzureClients>
  #algorithm: (typeof AZURE_KEY_TYPES)[keyof typeof AZURE_KEY_TYPES]
  #keyType: keyof typeof AZURE_KEY_TYPES
  #concurrency: number
  #retry: RetryOptions
  #retryDeps: RetryDeps
  #cache = new Map<string, { at: number; map: Promise<VersionMap | null> }>()

  constructor(options: AzureKeyVaultDriverOptions) {
    let url: URL
    try {
      url = new URL(options.vaultUrl)
    } catch {
      throw new E_KMS_CONFIG(['AZURE_KEYVAULT_URL is not a URL'])
    }
    if (url.protocol !== 'https:') {
      throw new E_KMS_CONFIG(['AZURE_KEYVAULT_URL must be https:// (Key Vault tokens need TLS)'])
    }
    this.#keyType = options.keyType ?? 'RSA'
    if (!Object.hasOwn(AZURE_KEY_TYPES, this.#keyType)) {
      throw new E_KMS_CONFIG([`unknown Key Vault key type "${this.#keyType}"`])
    }
    this.#algorithm = AZURE_KEY_TYPES[this.#keyType]
    this.#options = options
    this.#concurrency = Math.max(1, options.concurrency ?? 8)
    this.#retry = options.retry ?? DEFAULT_RETRY
    this.#retryDeps = options.retryDeps ?? defaultRetryDeps
    this.budget = new RequestBudget({
      ratePerSecond: options.requestsPerSecond ?? DEFAULT_AZURE_REQUESTS_PER_SECOND,
    })
  }

  async createKey(name: string): Promise<KekInfo> {
    if (await this.#load(name, true)) throw new E_KEK_EXISTS([name])
    await this.#createVersion(name, 1)
    return this.#mustRead(name)
  }

  async readKey(name: string): Promise<KekInfo | null> {
    const map = await this.#load(name, true)
    return map ? toKekInfo(name, map) : null
  }

  async listKeys(): Promise<string[]> {
    const clients = await this.#client()
    const names = await this.#call('', 'list', true, async () => {
      const found: string[] = []
      for await (const props of clients.keys.listPropertiesOfKeys()) {
        if (tagVersion(props.tags) !== null) found.push(props.name)
      }
      return found
    })
    return [...new Set(names)].sort()
  }

  async rotateKey(name: string): Promise<KekInfo> {
    const map = await this.#mustLoad(name, true)
    await this.#createVersion(name, map.latestVersion + 1)
    return this.#mustRead(name)
  }

  async configureKey(name: string, config: KekConfig): Promise<KekInfo> {
    const map = await this.#mustLoad(name, true)
    const minEncryption = config.minEncryptionVersion
    if (minEncryption !== undefined && minEncryption !== 0 && minEncryption !== map.latestVersion) {
      throw kmsError(
        'E_KMS_REJECTED',
        'Key Vault has no minimum encryption version: new wraps always use the latest',
        name
      )
    }
    const min = config.minDecryptionVersion
    if (min !== undefined) {
      if (!Number.isInteger(min) || min < 1 || min > map.latestVersion) {
        throw kmsError('E_KMS_REJECTED', `min decryption version ${min} is out of range`, name)
      }
      const clients = await this.#client()
      await mapLimited(retirementChanges(map, min), this.#concurrency, (change) =>
        this.#call(name, 'update', true, (abortSignal) =>
          clients.keys.updateKeyProperties(name, change.versionId, {
            enabled: change.enabled,
            abortSignal,
          })
        )
      )
    }
    return this.#mustRead(name)
  }

  async trimKey(name: string, _minAvailableVersion: number): Promise<KekInfo> {
    await this.#mustLoad(name, true)
    throw new E_TRIM_UNSUPPORTED([name, 'Azure Key Vault'])
  }

  async generateDataKey(name: string): Promise<DataKey> {
    const plaintext = randomBytes(32)
    const [wrapped] = await this.wrap(name, [plaintext])
    return { plaintext, wrapped, version: parseAzureWrapped(wrapped)!.version }
  }

  async wrap(name: string, deks: Buffer[]): Promise<string[]> {
    const target = this.#encryptionVersion(name, await this.#mustLoad(name, false))
    return mapLimited(deks, this.#concurrency, (dek) => this.#wrapOne(name, target, dek))
  }

  async unwrap(name: string, wrapped: string[]): Promise<Buffer[]> {
    const map = await this.#mustLoad(name, false)
    const sources: MappedVersion[] = []
    for (const value of wrapped) {
      try {
        sources.push(await this.#source(name, map, value))
      } catch (error) {
        throw error instanceof ItemError ? kmsError(error.code, error.message, name) : error
      }
    }
    const items = wrapped.map((value, i) => ({ bytes: parseAzureWrapped(value)!.bytes, i }))
    return mapLimited(items, this.#concurrency, async ({ bytes, i }) => {
      try {
        return await this.#unwrapOne(name, sources[i], bytes)
      } catch (error) {
        throw error instanceof ItemError ? kmsError(error.code, error.message, name) : error
      }
    })
  }

  async rewrap(name: string, wrapped: string[], version?: number): Promise<RewrapResult[]> {
    let map = await this.#mustLoad(name, false)
    if (version !== undefined && !map.versions.some((v) => v.version === version)) {
      map = await this.#mustLoad(name, true)
    }
    const target = this.#encryptionVersion(name, map, version)
    return mapLimited(wrapped, this.#concurrency, async (value): Promise<RewrapResult> => {
      let dek: Buffer | undefined
      try {
        const source = await this.#source(name, map, value)
        dek = await this.#unwrapOne(name, source, parseAzureWrapped(value)!.bytes)
        return {
          ok: true,
          wrapped: await this.#wrapOne(name, target, dek),
          version: target.version,
        }
      } catch (error) {
        if (error instanceof ItemError)
          return { ok: false, code: error.code, message: error.message }
        throw error
      } finally {
        dek?.fill(0)
      }
    })
  }

  async close() {
    const clients = this.#clients
    this.#clients = undefined
    if (!clients) return
    const resolved = await clients
    resolved.close()
  }

  /** The version new wraps use (`version`, else the latest), checked against retirement. */
  #encryptionVersion(name: string, map: VersionMap, version?: number): MappedVersion {
    const wanted = version ?? map.latestVersion
    const target = map.versions.find((v) => v.version === wanted)
    if (!target) throw kmsError('E_KMS_REJECTED', `no key version v${wanted}`, name)
    if (wanted < map.minDecryptionVersion || !target.enabled) {
      throw kmsError('E_KEY_VERSION_DISALLOWED', `key version v${wanted} is disabled`, name)
    }
    return target
  }

  /** The key version a wrapped DEK names (its tag must say the same N). */
  async #source(name: string, map: VersionMap, value: string): Promise<MappedVersion> {
    const parsed = parseAzureWrapped(value)
    if (!parsed) throw new ItemError('E_CIPHERTEXT_INVALID', 'invalid ciphertext: not azure:vN:')
    let current: VersionMap | null = map
    let mapped = map.byId.get(parsed.versionId)
    if (!mapped) {
      // A version made since the list was cached (another process rotated): list again.
      current = await this.#load(name, true)
      mapped = current?.byId.get(parsed.versionId)
    }
    if (!current || !mapped || mapped.version !== parsed.version) {
      throw new ItemError('E_CIPHERTEXT_INVALID', 'invalid ciphertext: unknown key version')
    }
    if (mapped.version < current.minDecryptionVersion || !mapped.enabled) {
      throw new ItemError('E_KEY_VERSION_DISALLOWED', `key version v${mapped.version} is disabled`)
    }
    return mapped
  }

  async #wrapOne(name: string, target: MappedVersion, dek: Buffer): Promise<string> {
    const clients = await this.#client()
    const result = await this.#call(name, 'wrap', true, (abortSignal) =>
      clients.crypto(name, target.versionId).wrapKey(this.#algorithm, dek, { abortSignal })
    )
    return formatAzureWrapped(target.version, target.versionId, result.result)
  }

  async #unwrapOne(name: string, source: MappedVersion, bytes: Buffer): Promise<Buffer> {
    const clients = await this.#client()
    try {
      const result = await this.#call(name, 'unwrap', true, (abortSignal) =>
        clients.crypto(name, source.versionId).unwrapKey(this.#algorithm, bytes, { abortSignal })
      )
      const dek = Buffer.from(result.result)
      result.result.fill(0)
      return dek
    } catch (error) {
      const code = (error as { code?: KmsErrorCode }).code
      if (code && ITEM_CODES.has(code)) throw new ItemError(code, 'Key Vault could not unwrap')
      throw error
    }
  }

  /** Creates version `n` once: a retry first looks whether the lost attempt landed. */
  async #createVersion(name: string, n: number) {
    const clients = await this.#client()
    await this.#call(name, 'create', true, async (abortSignal, attempt) => {
      if (attempt > 1) {
        const landed = await this.#load(name, true)
        if (landed?.versions.some((v) => v.version === n)) return
      }
      await clients.keys.createKey(name, this.#keyType, {
        keySize: this.#options.keySize ?? (this.#keyType === 'oct-HSM' ? 256 : 2048),
        keyOps: ['wrapKey', 'unwrapKey'],
        tags: { [VERSION_TAG]: String(n), [KEK_TAG]: name },
        abortSignal,
      })
    })
    this.#cache.delete(name)
  }

  async #mustRead(name: string): Promise<KekInfo> {
    return toKekInfo(name, await this.#mustLoad(name, true))
  }

  async #mustLoad(name: string, fresh: boolean): Promise<VersionMap> {
    const map = await this.#load(name, fresh)
    if (!map) throw kmsError('E_KEK_NOT_FOUND', 'no Rewrap-tagged key of that name', name)
    return map
  }

  /** A key's version map (cached for wrap/unwrap; `fresh` lists again); null when unknown. */
  #load(name: string, fresh: boolean): Promise<VersionMap | null> {
    const ttl = this.#options.versionCacheMs ?? 5_000
    const cached = this.#cache.get(name)
    if (!fresh && cached && Date.now() - cached.at < ttl) return cached.map
    const map = this.#listVersions(name).then((items) => {
      const mapped = items ? mapVersions(items) : null
      return mapped && mapped.versions.length > 0 ? mapped : null
    })
    this.#cache.set(name, { at: Date.now(), map })
    map.catch(() => this.#cache.delete(name))
    return map
  }

  async #listVersions(name: string): Promise<KeyVersionProperties[] | null> {
    const clients = await this.#client()
    try {
      return await this.#call(name, 'list', true, async () => {
        const items: KeyVersionProperties[] = []
        for await (const props of clients.keys.listPropertiesOfKeyVersions(name)) items.push(props)
        return items
      })
    } catch (error) {
      if ((error as { code?: string }).code === 'E_KEK_NOT_FOUND') return null
      throw error
    }
  }

  #client(): Promise<AzureClients> {
    this.#clients ??= AzureClients.create({
      vaultUrl: this.#options.vaultUrl,
      token: this.#options.token,
      credential: this.#options.credential,
      ca: this.#options.ca,
      disableChallengeResourceVerification: this.#options.disableChallengeResourceVerification,
    })
    return this.#clients
  }

  /**
   * One Key Vault request: a budget token, a timeout, retries (429/503
   * always, after Retry-After; other 5xx and lost connections when
   * idempotent), failures as E_* errors.
   */
  async #call<T>(
    name: string,
    op: 'list' | 'create' | 'update' | 'wrap' | 'unwrap',
    idempotent: boolean,
    fn: (abortSignal: AbortSignal, attempt: number) => Promise<T>
  ): Promise<T> {
    try {
      return await withRetry(
        async (attempt) => {
          await this.budget.take()
          return fn(AbortSignal.timeout(this.#options.timeoutMs ?? 30_000), attempt)
        },
        (error) => azureRetryDecision(error, idempotent),
        this.#retry,
        this.#retryDeps
      )
    } catch (error) {
      const code = classifyAzureError(error, op === 'unwrap' ? 'unwrap' : undefined)
      throw kmsError(code, azureDetail(error), name)
    }
  }
}
