/*
|--------------------------------------------------------------------------
| Key Vault requests of the azure-keyvault driver
|--------------------------------------------------------------------------
|
| Every request goes through `call`: a token of the requests/s budget
| (shared by all concurrent calls of the driver), a timeout, retries (429
| and 503 always, after Retry-After; other 5xx and lost connections when
| the request is idempotent or reconciled), and failures turned into E_*
| errors whose message is fixed and whose cause holds Key Vault's text.
|
*/
import { kmsError } from '#kms/error_codes'
import { TokenBucket } from '#kms/rate_limiter'
import { defaultRetryDeps, withRetry, type RetryDeps, type RetryOptions } from '#kms/retry'
import { AzureClients, type AzureClientOptions } from '#kms/drivers/azure_client'
import { azureDetail, azureRetryDecision, classifyAzureError } from '#kms/drivers/azure_errors'
import { tagVersion, type KeyVersionProperties } from '#kms/drivers/azure_versions'

/** Operations, for error classification. */
export type AzureOp = 'list' | 'create' | 'update' | 'wrap' | 'unwrap'

/** Settings of the request layer. */
export interface AzureCallOptions extends AzureClientOptions {
  requestsPerSecond: number
  retry: RetryOptions
  retryDeps?: RetryDeps
  timeoutMs?: number
}

/**
 * The clients of one vault and the rules every request follows.
 */
export class AzureCalls {
  readonly budget: TokenBucket
  #options: AzureCallOptions
  #clients?: Promise<AzureClients>
  #retryDeps: RetryDeps

  constructor(options: AzureCallOptions) {
    this.#options = options
    this.#retryDeps = options.retryDeps ?? defaultRetryDeps
    this.budget = new TokenBucket({ ratePerSecond: options.requestsPerSecond })
  }

  /** The SDK clients (made on first use). */
  clients(): Promise<AzureClients> {
    this.#clients ??= AzureClients.create(this.#options)
    return this.#clients
  }

  /** Names of the keys whose current version carries a `rewrap-version` tag. */
  async listKeyNames(): Promise<string[]> {
    const clients = await this.clients()
    return this.call('', 'list', true, async () => {
      const found: string[] = []
      for await (const props of clients.keys.listPropertiesOfKeys()) {
        if (tagVersion(props.tags) !== null) found.push(props.name)
      }
      return found
    })
  }

  /** Every version of a key (all pages); null when Key Vault does not know the key. */
  async listVersions(name: string): Promise<KeyVersionProperties[] | null> {
    const clients = await this.clients()
    try {
      return await this.call(name, 'list', true, async () => {
        const items: KeyVersionProperties[] = []
        for await (const props of clients.keys.listPropertiesOfKeyVersions(name)) items.push(props)
        return items
      })
    } catch (error) {
      if ((error as { code?: string }).code === 'E_KEK_NOT_FOUND') return null
      throw error
    }
  }

  /**
   * One Key Vault request (a listing counts once per call, not per page).
   */
  async call<T>(
    name: string,
    op: AzureOp,
    idempotent: boolean,
    fn: (abortSignal: AbortSignal, attempt: number) => Promise<T>
  ): Promise<T> {
    try {
      return await withRetry(
        async (attempt) => {
          await this.budget.acquire()
          return fn(AbortSignal.timeout(this.#options.timeoutMs ?? 30_000), attempt)
        },
        (error) => azureRetryDecision(error, idempotent),
        this.#options.retry,
        this.#retryDeps
      )
    } catch (error) {
      const code = classifyAzureError(error, op === 'unwrap' ? 'unwrap' : undefined)
      throw kmsError(code, azureDetail(error), name)
    }
  }

  /** Releases sockets. */
  async close() {
    const clients = this.#clients
    this.#clients = undefined
    if (!clients) return
    const resolved = await clients
    resolved.close()
  }
}
