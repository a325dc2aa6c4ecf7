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

/** What precedes the version in Vault's default version template. */
const VERSION_PREFIX = 'vault:v'

/** A parsed `vault:vN:` string. */
export interface VaultCiphertext {
  /** Key version (≥ 1). */
  version: number
  /** Decoded bytes after the prefix. */
  bytes: Buffer
}

/**
 * A `vault:v<N>:<body>` string split as Vault splits it, before any policy
 * check: the version as Go's strconv.Atoi reads it (a bigint, so huge or
 * negative values survive for the policy checks) and the still-encoded body.
 */
export type SplitVaultCiphertext =
  { ok: true; version: bigint; body: string } | { ok: false; error: string }

/**
 * Splits a ciphertext with the checks, order and messages of Vault's
 * keysutil.Policy.DecryptWithFactory (sdk/helper/keysutil/policy.go): the
 * `vault:v` prefix ("invalid ciphertext: no prefix"), one `:` after the
 * version ("invalid ciphertext: wrong number of fields"), then the version
 * through strconv.Atoi ("invalid ciphertext: version number could not be
 * decoded"). The caller applies the version-0 compatibility rule, the
 * latest / min_decryption_version checks, then decodes the body.
 */
export function splitVaultCiphertext(value: string): SplitVaultCiphertext {
  if (typeof value !== 'string' || !value.startsWith(VERSION_PREFIX)) {
    return { ok: false, error: 'invalid ciphertext: no prefix' }
  }
  const rest = value.slice(VERSION_PREFIX.length)
  const colon = rest.indexOf(':')
  if (colon === -1) return { ok: false, error: 'invalid ciphertext: wrong number of fields' }
  const version = goAtoi(rest.slice(0, colon))
  if (version === null) {
    return { ok: false, error: 'invalid ciphertext: version number could not be decoded' }
  }
  return { ok: true, version, body: rest.slice(colon + 1) }
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

/** Go's strconv.Atoi on a 64-bit platform: optional sign, decimal digits, int64 range. */
function goAtoi(text: string): bigint | null {
  if (!/^[+-]?[0-9]+$/.test(text)) return null
  const value = BigInt(text)
  return value < INT64_MIN || value > INT64_MAX ? null : value
}

/**
 * Decodes as Go's base64.StdEncoding.DecodeString does (what Vault uses on
 * the ciphertext body): standard alphabet, padding required, CR and LF
 * ignored; null when Go would fail.
 */
export function decodeStdBase64(text: string): Buffer | null {
  const compact = text.replace(/[\r\n]/g, '')
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null
  return Buffer.from(compact, 'base64')
}

/**
 * Parses a canonical `vault:vN:<base64>` string (N ≥ 1, strict base64);
 * returns null when malformed. Stricter than Vault: for the app's own checks.
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
 * Formats bytes as a `vault:vN:` string.
 */
export function formatVaultCiphertext(version: number, bytes: Buffer): string {
  return `vault:v${version}:${bytes.toString('base64')}`
}
