/*
|--------------------------------------------------------------------------
| Wrapped DEK strings of every driver (pure)
|--------------------------------------------------------------------------
|
| Every driver writes `<scheme>:v<N>:<body>`: Vault and the local engine
| `vault:vN:<base64>`, AWS KMS `aws:vN:<base64 CiphertextBlob>`. Rows stay
| self-describing: the KEK version is read from the prefix whatever the
| driver (the rotation's per-version scan, the entry writers, the
| migration trigger use the same rule).
|
*/

/** `<scheme>:v<N>:` — scheme lower-case letters, digits and dashes; N ≥ 1. */
const PREFIX = /^([a-z][a-z0-9-]{0,15}):v([1-9][0-9]{0,8}):/

/** The same rule as a PostgreSQL regular expression (for SQL triggers). */
export const WRAPPED_DEK_VERSION_SQL_PATTERN = '^[a-z][a-z0-9-]{0,15}:v([1-9][0-9]{0,8}):'

/**
 * Reads the KEK version of any driver's wrapped DEK; null when malformed.
 */
export function wrappedDekVersion(value: string): number | null {
  if (typeof value !== 'string') return null
  const match = PREFIX.exec(value)
  return match ? Number(match[2]) : null
}

/**
 * Splits `<scheme>:v<N>:<body>`; null when the prefix is malformed.
 */
export function splitWrappedDek(
  value: string
): { scheme: string; version: number; body: string } | null {
  if (typeof value !== 'string') return null
  const match = PREFIX.exec(value)
  if (!match) return null
  return { scheme: match[1], version: Number(match[2]), body: value.slice(match[0].length) }
}
