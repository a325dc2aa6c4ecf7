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
import { E_KEK_EXISTS, E_KEK_NAME_UNSUPPORTED, E_KMS_CONFIG, E_TRIM_UNSUPPORTED } from '#app/errors'
import { mapLimited } from '#app/utils/async'
import type { DataKey, KekConfig, KekInfo, KmsDriver, RewrapResult } from '#kms/contract'
import { kmsError, type KmsErrorCode } from '#kms/error_codes'

export {
  AZURE_KEY_TYPES,
  DEFAULT_AZURE_REQUESTS_PER_SECOND,
  type AzureKeyVaultDriverOptions,
} from '#kms/drivers/azure_options'
import {
  AZURE_KEY_TYPES,
  DEFAULT_AZURE_REQUESTS_PER_SECOND,
  DEFAULT_AZURE_RETRY,
  type AzureKeyVaultDriverOptions,
} from '#kms/drivers/azure_options'
import { AzureCalls } from '#kms/drivers/azure_calls'
import { formatAzureWrapped, parseAzureWrapped } from '#kms/drivers/azure_wrapped'
import {
  KEK_TAG,
  mapVersions,
  retirementChanges,
  toKekInfo,
  VERSION_TAG,
  type MappedVersion,
  type VersionMap,
} from '#kms/drivers/azure_versions'

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
  #calls: AzureCalls
  #options: AzureKeyVaultDriverOptions
  #algorithm: (typeof AZURE_KEY_TYPES)[keyof typeof AZURE_KEY_TYPES]
  #keyType: keyof typeof AZURE_KEY_TYPES
  #concurrency: number
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
    this.#calls = new AzureCalls({
      vaultUrl: options.vaultUrl,
      token: options.token,
      credential: options.credential,
      ca: options.ca,
      disableChallengeResourceVerification: options.disableChallengeResourceVerification,
      requestsPerSecond: options.requestsPerSecond ?? DEFAULT_AZURE_REQUESTS_PER_SECOND,
      retry: options.retry ?? DEFAULT_AZURE_RETRY,
      retryDeps: options.retryDeps,
      timeoutMs: options.timeoutMs,
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
    return [...new Set(await this.#calls.listKeyNames())].sort()
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
      const clients = await this.#calls.clients()
      await mapLimited(retirementChanges(map, min), this.#concurrency, (change) =>
        this.#calls.call(name, 'update', true, (abortSignal) =>
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
    const plaintext = (this.#options.random ?? randomBytes)(32)
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

  /** A rewrap row costs two requests (unwrap + wrap): the quota bounds rows/s at half the budget. */
  rewrapRowsPerSecondCeiling(): number | undefined {
    return this.#calls.budget.unlimited ? undefined : this.#calls.budget.ratePerSecond / 2
  }

  /** The requests/s budget every request of this driver takes from. */
  get budget() {
    return this.#calls.budget
  }

  async close() {
    await this.#calls.close()
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
    const clients = await this.#calls.clients()
    const result = await this.#calls.call(name, 'wrap', true, (abortSignal) =>
      clients.crypto(name, target.versionId).wrapKey(this.#algorithm, dek, { abortSignal })
    )
    return formatAzureWrapped(target.version, target.versionId, result.result)
  }

  async #unwrapOne(name: string, source: MappedVersion, bytes: Buffer): Promise<Buffer> {
    const clients = await this.#calls.clients()
    try {
      const result = await this.#calls.call(name, 'unwrap', true, (abortSignal) =>
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
    assertAzureKeyName(name)
    const clients = await this.#calls.clients()
    await this.#calls.call(name, 'create', true, async (abortSignal, attempt) => {
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
    assertAzureKeyName(name)
    const ttl = this.#options.versionCacheMs ?? 5_000
    const cached = this.#cache.get(name)
    if (!fresh && cached && Date.now() - cached.at < ttl) return cached.map
    const map = this.#calls.listVersions(name).then((items) => {
      const mapped = items ? mapVersions(items) : null
      return mapped && mapped.versions.length > 0 ? mapped : null
    })
    this.#cache.set(name, { at: Date.now(), map })
    map.catch(() => this.#cache.delete(name))
    return map
  }
}

/** Azure Key Vault's rule for key names (the KEK name is the key's name). */
const AZURE_KEY_NAME = /^[0-9A-Za-z-]{1,127}$/

/**
 * Refuses, before any call, a KEK name Azure Key Vault would reject (Rewrap
 * also allows `_` and `.`): E_KEK_NAME_UNSUPPORTED with the rule.
 */
export function assertAzureKeyName(name: string) {
  if (!AZURE_KEY_NAME.test(name)) {
    throw new E_KEK_NAME_UNSUPPORTED([
      name,
      'Azure Key Vault',
      'key names allow only letters, digits and dashes (1 to 127)',
    ])
  }
}
