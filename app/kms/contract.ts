/*
|--------------------------------------------------------------------------
| KMS driver contract
|--------------------------------------------------------------------------
|
| Every KMS driver (local, vault, later aws/azure) implements this and
| passes the same contract test suite (tests/integration/kms_contract.spec.ts).
| Wrapped DEKs are `<scheme>:vN:<body>` strings (`vault:vN:<base64>` for
| local and vault, `aws:vN:<base64>` for aws-kms,
| `azure:vN:<version id>:<base64url>` for azure-keyvault): the version is
| read from the prefix by app/crypto/wrapped_dek.ts whatever the driver.
|
| Errors are the E_* errors of app/errors.ts: E_KEK_NOT_FOUND,
| E_KMS_UNAVAILABLE, E_KMS_DENIED, E_KMS_REJECTED, E_CIPHERTEXT_INVALID,
| E_KEY_VERSION_DISALLOWED.
|
*/

/** One version of a KEK. */
export interface KekVersion {
  version: number
  createdAt: Date
}

/** What the KMS knows about a KEK (no key material). */
export interface KekInfo {
  name: string
  /** Versions still able to decrypt (≥ minDecryptionVersion), ascending. */
  versions: KekVersion[]
  latestVersion: number
  minDecryptionVersion: number
  /** 0 = latest. */
  minEncryptionVersion: number
  /** Versions below this were trimmed (0 = none). */
  minAvailableVersion: number
}

/** A fresh DEK, in plaintext and wrapped. */
export interface DataKey {
  plaintext: Buffer
  wrapped: string
  version: number
}

/** Result of one rewrap item. */
export type RewrapResult =
  { ok: true; wrapped: string; version: number } | { ok: false; code: string; message: string }

/** Policy settings (Vault's keys/:name/config). */
export interface KekConfig {
  minDecryptionVersion?: number
  minEncryptionVersion?: number
}

/**
 * The operations Rewrap needs from a KMS.
 */
export interface KmsDriver {
  /**
   * False when the KMS cannot delete single versions (Azure Key Vault deletes
   * a key whole): kek:trim is refused before any check (E_TRIM_UNSUPPORTED).
   * Absent means true.
   */
  readonly canTrimVersions?: boolean
  /** Creates a KEK (version 1). E_KEK_EXISTS when it already exists. */
  createKey(name: string): Promise<KekInfo>
  /** Reads a KEK, null when unknown. */
  readKey(name: string): Promise<KekInfo | null>
  /** Names of every KEK the driver holds, sorted; [] when none (Vault: LIST keys). */
  listKeys(): Promise<string[]>
  /** Adds a new latest version; new wraps use it at once. */
  rotateKey(name: string): Promise<KekInfo>
  /** Sets min decryption / encryption versions (retire, unretire). */
  configureKey(name: string, config: KekConfig): Promise<KekInfo>
  /** Deletes versions below `minAvailableVersion` permanently. */
  trimKey(name: string, minAvailableVersion: number): Promise<KekInfo>
  /** A fresh 256-bit DEK wrapped under the latest version. */
  generateDataKey(name: string): Promise<DataKey>
  /** Wraps DEKs under the latest version (batch; order kept). */
  wrap(name: string, deks: Buffer[]): Promise<string[]>
  /** Unwraps DEKs (batch; order kept). Any bad item fails the call. */
  unwrap(name: string, wrapped: string[]): Promise<Buffer[]>
  /**
   * Re-wraps DEKs under `version` (default latest) without exposing them.
   * Per-item results: a bad item never fails the others.
   */
  rewrap(name: string, wrapped: string[], version?: number): Promise<RewrapResult[]>
  /** Releases connections. */
  close(): Promise<void>
  /**
   * Optional: rows per second a rewrap can move at most under the driver's
   * requests/s ceiling (a cloud KMS quota shared by the account: requests/s
   * ÷ requests per row: AWS 1, Azure 2). Absent or undefined when no such
   * bound applies. Estimates (`rotate:kek --dry-run`, preflight) are capped
   * by it and say "quota-bound".
   */
  rewrapRowsPerSecondCeiling?(): number | undefined
}
