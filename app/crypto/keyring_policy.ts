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
 * A requested min decryption / encryption version as pathKeysConfigWrite
 * checks it: an integer, not negative (a min decryption version of 0 is
 * forced to 1, with a warning the HTTP handler adds), and, when it differs
 * from the current one, not above the latest version. Undefined when
 * nothing was asked or nothing changes.
 */
function changedMinVersion(
  ring: Keyring,
  kind: 'decryption' | 'encryption',
  requested: number | undefined
): number | undefined {
  if (requested === undefined) return undefined
  if (!Number.isInteger(requested)) throw new KeyringError(`min ${kind} version must be an integer`)
  if (requested < 0) throw new KeyringError(`min ${kind} version cannot be negative`)
  const version = kind === 'decryption' && requested === 0 ? 1 : requested
  const current = kind === 'decryption' ? ring.minDecryptionVersion : ring.minEncryptionVersion
  if (version === current) return undefined
  if (version > ring.latestVersion) {
    throw new KeyringError(
      `cannot set min ${kind} version of ${version}, latest key version is ${ring.latestVersion}`
    )
  }
  return version
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
  const minDecryption = changedMinVersion(ring, 'decryption', config.minDecryptionVersion)
  if (minDecryption !== undefined) {
    next.minDecryptionVersion = minDecryption
    changed = true
  }
  const minEncryption = changedMinVersion(ring, 'encryption', config.minEncryptionVersion)
  if (minEncryption !== undefined) {
    next.minEncryptionVersion = minEncryption
    changed = true
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
