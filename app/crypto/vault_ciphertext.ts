/*
|--------------------------------------------------------------------------
| Vault ciphertext strings (pure)
|--------------------------------------------------------------------------
|
| `vault:v<N>:<base64>`, as HashiCorp Vault Transit writes them. For
| aes256-gcm96 the base64 holds nonce (12) ‖ ciphertext ‖ tag (16).
|
*/

const PATTERN = /^vault:v([1-9][0-9]{0,8}):([A-Za-z0-9+/]+={0,2})$/

/** A parsed `vault:vN:` string. */
export interface VaultCiphertext {
  /** Key version (≥ 1). */
  version: number
  /** Decoded bytes after the prefix. */
  bytes: Buffer
}

/**
 * Parses a `vault:vN:<base64>` string; returns null when malformed.
 */
export function parseVaultCiphertext(value: string): VaultCiphertext | null {
  if (typeof value !== 'string') return null
  const match = PATTERN.exec(value)
  if (!match) return null
  const bytes = Buffer.from(match[2], 'base64')
  if (bytes.toString('base64') !== match[2]) return null
  return { version: Number(match[1]), bytes }
}

/**
 * Reads only the version of a `vault:vN:` string; null when malformed.
 * Cheap: used to skip rows already at the target without decoding.
 */
export function vaultCiphertextVersion(value: string): number | null {
  if (typeof value !== 'string') return null
  const match = /^vault:v([1-9][0-9]{0,8}):/.exec(value)
  return match ? Number(match[1]) : null
}

/**
 * Formats bytes as a `vault:vN:` string.
 */
export function formatVaultCiphertext(version: number, bytes: Buffer): string {
  return `vault:v${version}:${bytes.toString('base64')}`
}
