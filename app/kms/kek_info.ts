import type { KeyringInfo } from '#crypto/keyring'
import type { KekInfo } from '#kms/contract'

/**
 * Converts Vault's key read response (`data` of GET keys/:name) into KekInfo.
 */
export function keyringToKekInfo(
  data: Pick<
    KeyringInfo,
    | 'name'
    | 'keys'
    | 'latest_version'
    | 'min_decryption_version'
    | 'min_encryption_version'
    | 'min_available_version'
  >
): KekInfo {
  const versions = Object.entries(data.keys ?? {})
    .map(([version, created]) => ({ version: Number(version), createdAt: toDate(created) }))
    .sort((a, b) => a.version - b.version)
  return {
    name: data.name,
    versions,
    latestVersion: Number(data.latest_version),
    minDecryptionVersion: Number(data.min_decryption_version ?? 1),
    minEncryptionVersion: Number(data.min_encryption_version ?? 0),
    minAvailableVersion: Number(data.min_available_version ?? 0),
  }
}

/**
 * Vault answers creation times as unix seconds for symmetric keys and as
 * RFC 3339 strings for some others: accept both.
 */
function toDate(value: unknown): Date {
  if (typeof value === 'number') return new Date(value * 1000)
  if (typeof value === 'string') return new Date(value)
  return new Date(0)
}
