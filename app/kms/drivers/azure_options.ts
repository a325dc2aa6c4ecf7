/*
|--------------------------------------------------------------------------
| Options of the azure-keyvault driver
|--------------------------------------------------------------------------
*/
import type { RetryDeps, RetryOptions } from '#kms/retry'
import type { TokenCredential } from '#kms/drivers/azure_client'

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
  /** Requests/s budget across concurrent calls (a rewrap item costs 2); 0 = no ceiling. */
  requestsPerSecond?: number
  retry?: RetryOptions
  retryDeps?: RetryDeps
  /** How long a key's version list is reused for wrap/unwrap, ms. */
  versionCacheMs?: number
  /** Per-request timeout, ms. */
  timeoutMs?: number
  /** Randomness for generateDataKey's DEKs (node:crypto by default). */
  random?: (size: number) => Buffer
  /** For a stand-in on a host that is not *.vault.azure.net. */
  disableChallengeResourceVerification?: boolean
}

/** Default share of the vault quota: 2,000 of 4,000 RSA-2048 operations per 10 s. */
export const DEFAULT_AZURE_REQUESTS_PER_SECOND = 200
export const DEFAULT_AZURE_RETRY: RetryOptions = {
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
}
