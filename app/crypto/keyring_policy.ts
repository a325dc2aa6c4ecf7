/*
|--------------------------------------------------------------------------
| Transit keyring policy changes (pure)
|--------------------------------------------------------------------------
|
| Vault's keys/:name/config and keys/:name/trim on the keyring data of
| keyring.ts: same checks, same order, same messages.
|
*/
import { KeyringError, type Keyring, type KeyVersion } from '#crypto/keyring'

/** Settable policy fields (Vault's keys/:name/config). */
export interface KeyringConfig {
  minDecryptionVersion?: number
  minEncryptionVersion?: number
  deletionAllowed?: boolean
}

/**
 * Applies a config change with the checks, order and messages of Vault's
 * pathKeysConfigWrite (builtin/logical/transit/path_keys_config.go): a
 * version is only checked against the latest when it changes; then
 * min_encryption_version (when not 0) must be ≥ min_decryption_version;
 * and, when anything changed, neither may end below min_available_version
 * (after a trim, min_encryption_version 0 — "latest" — is refused too).
 */
export function configureKeyring(ring: Keyring, config: KeyringConfig): Keyring {
  const next = { ...ring }
  let changed = false
  if (config.minDecryptionVersion !== undefined) {
    let v = config.minDecryptionVersion
    if (!Number.isInteger(v)) throw new KeyringError('min decryption version must be an integer')
    if (v < 0) throw new KeyringError('min decryption version cannot be negative')
    // Vault forces 0 to 1 (with a warning the HTTP handler adds).
    if (v === 0) v = 1
    if (v !== ring.minDecryptionVersion) {
      if (v > ring.latestVersion) {
        throw new KeyringError(
          `cannot set min decryption version of ${v}, latest key version is ${ring.latestVersion}`
        )
      }
      next.minDecryptionVersion = v
      changed = true
    }
  }
  if (config.minEncryptionVersion !== undefined) {
    const v = config.minEncryptionVersion
    if (!Number.isInteger(v)) throw new KeyringError('min encryption version must be an integer')
    if (v < 0) throw new KeyringError('min encryption version cannot be negative')
    if (v !== ring.minEncryptionVersion) {
      if (v > ring.latestVersion) {
        throw new KeyringError(
          `cannot set min encryption version of ${v}, latest key version is ${ring.latestVersion}`
        )
      }
      next.minEncryptionVersion = v
      changed = true
    }
  }
  if (next.minEncryptionVersion > 0 && next.minEncryptionVersion < next.minDecryptionVersion) {
    throw new KeyringError(
      `cannot set min encryption/decryption values; min encryption version of ${next.minEncryptionVersion} must be greater than or equal to min decryption version of ${next.minDecryptionVersion}`
    )
  }
  if (config.deletionAllowed !== undefined && config.deletionAllowed !== ring.deletionAllowed) {
    next.deletionAllowed = config.deletionAllowed
    changed = true
  }
  if (!changed) return next
  if (next.minAvailableVersion > next.minEncryptionVersion) {
    throw new KeyringError('min encryption version should not be less than min available version')
  }
  if (next.minAvailableVersion > next.minDecryptionVersion) {
    // "less then": Vault's own spelling, kept so clients matching it keep working.
    throw new KeyringError('min decryption version should not be less then min available version')
  }
  return next
}

/**
 * Deletes versions below `minAvailableVersion` permanently (Vault's trim).
 */
export function trimKeyring(ring: Keyring, minAvailableVersion: number): Keyring {
  const v = minAvailableVersion
  if (!Number.isInteger(v)) throw new KeyringError('minimum available version must be an integer')
  // Same checks, same order and same messages as Vault's path_trim.go.
  if (v < ring.minAvailableVersion) {
    throw new KeyringError('minimum available version cannot be decremented')
  }
  if (ring.minEncryptionVersion === 0) {
    throw new KeyringError(
      'minimum available version cannot be set when minimum encryption version is not set'
    )
  }
  if (v > ring.minEncryptionVersion) {
    throw new KeyringError(
      'minimum available version cannot be greater than minmum encryption version'
    )
  }
  if (v > ring.minDecryptionVersion) {
    throw new KeyringError(
      'minimum available version cannot be greater than minimum decryption version'
    )
  }
  if (v < 0) throw new KeyringError('minimum available version cannot be negative')
  if (v === 0) throw new KeyringError('minimum available version should be positive')
  const versions: Record<number, KeyVersion> = {}
  for (const [key, value] of Object.entries(ring.versions)) {
    if (Number(key) >= v) versions[Number(key)] = value
  }
  return { ...ring, versions, minAvailableVersion: v }
}
