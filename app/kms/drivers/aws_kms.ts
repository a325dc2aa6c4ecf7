/*
|--------------------------------------------------------------------------
| AWS KMS driver
|--------------------------------------------------------------------------
|
| `@aws-sdk/client-kms` against AWS (region, credentials and endpoint by
| the SDK's own conventions: default provider chain, AWS_REGION,
| AWS_ENDPOINT_URL_KMS) or `node ace kms:serve --api aws-kms`. The KEK
| layout — one KMS key per version, aliases, tags — is in aws_kms_layout.ts.
|
| - wrap / unwrap / generateDataKey: Encrypt / Decrypt / GenerateDataKey
|   with the encryption context `{"rewrap:kek": <name>}`;
| - rewrap: ReEncrypt from the version's key to the target's (the DEK never
|   leaves KMS); KMS has no batch API, so one call per DEK with at most
|   `concurrency` in flight and a requests/s ceiling over all calls;
| - rotate: CreateKey (tagged) + CreateAlias `…/vN` + UpdateAlias — exactly
|   one new version even across crashes (see rotateKey);
| - retire / unretire: DisableKey / EnableKey; trim: ScheduleKeyDeletion.
|
*/
import {
  DecryptCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
} from '@aws-sdk/client-kms'
import * as keyring from '#crypto/keyring'
import { configureKeyring, trimKeyring } from '#crypto/keyring_policy'
import type { DataKey, KekConfig, KekInfo, KmsDriver, RewrapResult } from '#kms/contract'
import { classifyKmsError, kmsError, type KmsErrorCode } from '#kms/error_codes'
import { TokenBucket } from '#kms/rate_limiter'
import { defaultRetryDeps, type RetryOptions } from '#kms/retry'
import { AwsKmsCalls, codeOf, detailOf } from '#kms/drivers/aws_kms_calls'
import { AwsKekReader } from '#kms/drivers/aws_kms_reader'
import { AwsKekVersions } from '#kms/drivers/aws_kms_versions'
import {
  encryptionContext,
  formatWrapped,
  kekAlias,
  kekNames,
  parseWrapped,
  policyRing,
  TAG_MIN_ENCRYPTION,
  type AwsKekState,
} from '#kms/drivers/aws_kms_layout'
import { assertAwsKmsOptions, type AwsKmsDriverOptions } from '#kms/drivers/aws_kms_options'

export { assertAwsKmsOptions, type AwsKmsDriverOptions }

const DEFAULT_RETRY: RetryOptions = { maxAttempts: 8, baseDelayMs: 50, maxDelayMs: 5_000 }

/**
 * KMS driver on AWS KMS.
 */
export class AwsKmsDriver implements KmsDriver {
  #client: KMSClient
  #calls: AwsKmsCalls
  #pendingWindow: number
  #requestsPerSecond: number
  #reader: AwsKekReader
  #versions: AwsKekVersions

  constructor(options: AwsKmsDriverOptions = {}) {
    assertAwsKmsOptions(options)
    this.#client = new KMSClient({
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
      maxAttempts: 1,
      requestHandler: {
        requestTimeout: options.timeoutMs ?? 30_000,
        httpAgent: { keepAlive: true, maxSockets: options.concurrency ?? 32 },
        httpsAgent: { keepAlive: true, maxSockets: options.concurrency ?? 32 },
      },
    })
    this.#pendingWindow = options.pendingWindowInDays ?? 30
    this.#requestsPerSecond = options.requestsPerSecond ?? 1000
    this.#calls = new AwsKmsCalls({
      client: this.#client,
      bucket: new TokenBucket({ ratePerSecond: this.#requestsPerSecond }, options.clock),
      retry: options.retry ?? DEFAULT_RETRY,
      retryDeps: options.retryDeps ?? defaultRetryDeps,
    })
    this.#reader = new AwsKekReader(this.#calls, options.concurrency ?? 32)
    this.#versions = new AwsKekVersions(this.#calls, this.#reader)
  }

  async createKey(name: string): Promise<KekInfo> {
    return this.#versions.create(name)
  }

  async readKey(name: string): Promise<KekInfo | null> {
    const state = await this.#reader.read(name)
    return state?.info ?? null
  }

  async listKeys(): Promise<string[]> {
    return kekNames(await this.#reader.aliases(''))
  }

  async rotateKey(name: string): Promise<KekInfo> {
    return this.#versions.rotate(name)
  }

  async configureKey(name: string, config: KekConfig): Promise<KekInfo> {
    const state = await this.#reader.mustRead(name)
    const next = this.#policy(name, () => configureKeyring(policyRing(state.info), config))
    await this.#reader.each(
      [...state.states].filter(([, s]) => s === 'Enabled' || s === 'Disabled'),
      async ([version, current]) => {
        const want = version >= next.minDecryptionVersion ? 'Enabled' : 'Disabled'
        if (want === current) return
        const KeyId = state.keyIds.get(version)!
        await this.#calls.send(
          name,
          want === 'Enabled' ? new EnableKeyCommand({ KeyId }) : new DisableKeyCommand({ KeyId })
        )
      }
    )
    if (next.minEncryptionVersion !== state.info.minEncryptionVersion) {
      await this.#calls.send(
        name,
        new TagResourceCommand({
          KeyId: state.latestKeyId,
          Tags: [{ TagKey: TAG_MIN_ENCRYPTION, TagValue: String(next.minEncryptionVersion) }],
        })
      )
    }
    return this.#reader.info(name)
  }

  async trimKey(name: string, minAvailableVersion: number): Promise<KekInfo> {
    const state = await this.#reader.mustRead(name)
    this.#policy(name, () => trimKeyring(policyRing(state.info), minAvailableVersion))
    await this.#reader.each(
      [...state.states].filter(
        ([v, s]) => v < minAvailableVersion && s !== 'PendingDeletion' && s !== 'Missing'
      ),
      async ([version]) => {
        await this.#calls.send(
          name,
          new ScheduleKeyDeletionCommand({
            KeyId: state.keyIds.get(version)!,
            PendingWindowInDays: this.#pendingWindow,
          })
        )
      }
    )
    return this.#reader.info(name)
  }

  async generateDataKey(name: string): Promise<DataKey> {
    const out = await this.#calls.send<{
      Plaintext?: Uint8Array
      CiphertextBlob?: Uint8Array
      KeyId?: string
    }>(
      name,
      new GenerateDataKeyCommand({
        KeyId: kekAlias(name),
        KeySpec: 'AES_256',
        EncryptionContext: encryptionContext(name),
      })
    )
    const version = await this.#reader.versionOf(name, out.KeyId)
    if (!out.Plaintext || !out.CiphertextBlob) throw this.#unexpected(name)
    return {
      plaintext: Buffer.from(out.Plaintext),
      wrapped: formatWrapped(version, out.CiphertextBlob),
      version,
    }
  }

  async wrap(name: string, deks: Buffer[]): Promise<string[]> {
    return this.#reader.each(deks, async (dek) => {
      const out = await this.#calls.send<{ CiphertextBlob?: Uint8Array; KeyId?: string }>(
        name,
        new EncryptCommand({
          KeyId: kekAlias(name),
          Plaintext: dek,
          EncryptionContext: encryptionContext(name),
        })
      )
      if (!out.CiphertextBlob) throw this.#unexpected(name)
      return formatWrapped(await this.#reader.versionOf(name, out.KeyId), out.CiphertextBlob)
    })
  }

  /**
   * Decrypt, one call per DEK. A version's key never changes, so once the
   * KEK was read no other call is made: AWS itself refuses a Disabled
   * (retired) or PendingDeletion (trimmed) key.
   */
  async unwrap(name: string, wrapped: string[]): Promise<Buffer[]> {
    if (wrapped.length === 0) return []
    const parsed = wrapped.map((value) => parseWrapped(value))
    let keyIds = this.#reader.keyIdsOf.get(name)
    if (!keyIds || parsed.some((p) => p && !keyIds!.has(p.version))) {
      const state = await this.#reader.mustRead(name)
      keyIds = state.keyIds
    }
    const items = parsed.map((p) => {
      const keyId = p ? keyIds!.get(p.version) : undefined
      if (!p || !keyId) {
        throw kmsError('E_CIPHERTEXT_INVALID', 'invalid ciphertext: unknown aws:vN: version', name)
      }
      return { keyId, blob: p.blob }
    })
    return this.#reader.each(items, async ({ keyId, blob }) => {
      const out = await this.#calls.send<{ Plaintext?: Uint8Array }>(
        name,
        new DecryptCommand({
          KeyId: keyId,
          CiphertextBlob: blob,
          EncryptionContext: encryptionContext(name),
        })
      )
      if (!out.Plaintext) throw this.#unexpected(name)
      return Buffer.from(out.Plaintext)
    })
  }

  async rewrap(name: string, wrapped: string[], version?: number): Promise<RewrapResult[]> {
    const state = await this.#reader.mustRead(name)
    const target = this.#policy(name, () =>
      keyring.encryptionVersion(policyRing(state.info), version)
    )
    const destination = state.keyIds.get(target)!
    const context = encryptionContext(name)
    return this.#reader.each(wrapped, async (value): Promise<RewrapResult> => {
      let source: { keyId: string; blob: Buffer }
      try {
        source = this.#sourceKey(name, state, value)
      } catch (error) {
        return failure(error)
      }
      try {
        const out = await this.#calls.raw<{ CiphertextBlob?: Uint8Array }>(
          new ReEncryptCommand({
            CiphertextBlob: source.blob,
            SourceKeyId: source.keyId,
            SourceEncryptionContext: context,
            DestinationKeyId: destination,
            DestinationEncryptionContext: context,
          })
        )
        if (!out.CiphertextBlob) throw this.#unexpected(name)
        return { ok: true, wrapped: formatWrapped(target, out.CiphertextBlob), version: target }
      } catch (error) {
        const own = String((error as { code?: unknown })?.code ?? '').startsWith('E_')
        const code = own ? (error as { code: KmsErrorCode }).code : codeOf(error)
        // The KMS is unreachable, throttling for good, or refuses us: the whole call fails.
        if (code === 'E_KMS_UNAVAILABLE' || code === 'E_KMS_DENIED' || code === 'E_KEK_NOT_FOUND') {
          throw own ? error : kmsError(code, detailOf(error), name)
        }
        return { ok: false, code, message: detailOf(error) }
      }
    })
  }

  /** One ReEncrypt per row: the requests/s ceiling is the rows/s bound. */
  rewrapRowsPerSecondCeiling(): number | undefined {
    return this.#requestsPerSecond > 0 ? this.#requestsPerSecond : undefined
  }

  async close() {
    this.#client.destroy()
  }

  /** The key a wrapped DEK needs, checked against the KEK's policy. */
  #sourceKey(name: string, state: AwsKekState, value: string) {
    const parsed = parseWrapped(value)
    if (!parsed)
      throw kmsError('E_CIPHERTEXT_INVALID', 'invalid ciphertext: no aws:vN: prefix', name)
    const keyId = state.keyIds.get(parsed.version)
    if (parsed.version > state.info.latestVersion || !keyId) {
      throw kmsError('E_CIPHERTEXT_INVALID', 'invalid ciphertext: version is too new', name)
    }
    if (parsed.version < state.info.minDecryptionVersion) {
      throw kmsError(
        'E_KEY_VERSION_DISALLOWED',
        'ciphertext version is disallowed by policy (too old)',
        name
      )
    }
    return { keyId, blob: parsed.blob }
  }

  /** Runs a Vault policy rule on the KEK; its refusal as the contract's error. */
  #policy<T>(name: string, rule: () => T): T {
    try {
      return rule()
    } catch (error) {
      if (error instanceof keyring.KeyringError) {
        throw kmsError(classifyKmsError(error.message, error.status), error.message, name)
      }
      throw error
    }
  }

  #unexpected(name: string) {
    return kmsError('E_KMS_REJECTED', 'AWS KMS answered an unexpected result', name)
  }
}

function failure(error: unknown): RewrapResult {
  const code = (error as any)?.code ?? 'E_KMS_REJECTED'
  return { ok: false, code, message: (error as Error).message }
}
