/*
|--------------------------------------------------------------------------
| Access token grammar
|--------------------------------------------------------------------------
|
| The exact shape of the bearer tokens Rewrap issues, checked before any
| database query: `rwp_` + base64url(id) + `.` + base64url(secret), where id
| is a decimal auth_access_tokens id (1 to 2^31-1, no leading zero) and
| secret is 40 random base64url characters followed by their CRC32 in
| decimal (the shape @adonisjs/auth's access tokens have). Anything else —
| `rwp_YWJj.…` (id "abc"), ids "1.5", "' OR 1=1", a 21-digit id, padded or
| non-canonical base64, a checksum that does not match — is not a token.
|
*/
import { crc32 } from 'node:zlib'

/** The token prefix (`prefix` of the model's token provider). */
export const TOKEN_PREFIX = 'rwp_'

/** Random characters in a token secret (the provider's `tokenSecretLength`, default 40). */
export const TOKEN_SECRET_LENGTH = 40

/** The largest auth_access_tokens id (an `integer` column). */
const MAX_TOKEN_ID = 2_147_483_647

const TOKEN_PATTERN = /^rwp_([A-Za-z0-9_-]{2,14})\.([A-Za-z0-9_-]{54,68})$/
const ID_PATTERN = /^[1-9][0-9]{0,9}$/
const SECRET_PATTERN = new RegExp(`^([A-Za-z0-9_-]{${TOKEN_SECRET_LENGTH}})([0-9]{1,10})$`)

/** A well-formed token, split. The secret stays inside this object: never log it. */
export interface ParsedAccessToken {
  /** auth_access_tokens.id, canonical decimal. */
  id: string
  /** The secret whose SHA-256 is stored (random part + checksum). */
  secret: string
}

/** Decodes canonical base64url (no padding) or returns null. */
function decodeCanonical(part: string): string | null {
  const text = Buffer.from(part, 'base64url').toString('utf8')
  return Buffer.from(text, 'utf8').toString('base64url') === part ? text : null
}

/**
 * Splits a bearer token into its id and secret when it has exactly the
 * shape of a token Rewrap issues; null otherwise (pure, no I/O).
 */
export function parseAccessToken(value: string | undefined | null): ParsedAccessToken | null {
  if (typeof value !== 'string') return null
  const match = TOKEN_PATTERN.exec(value)
  if (!match) return null
  const id = decodeCanonical(match[1])
  if (id === null || !ID_PATTERN.test(id) || Number(id) > MAX_TOKEN_ID) return null
  const secret = decodeCanonical(match[2])
  const parts = secret === null ? null : SECRET_PATTERN.exec(secret)
  if (!parts || String(crc32(parts[1])) !== parts[2]) return null
  return { id, secret: secret! }
}

/**
 * The token of an `Authorization: Bearer <token>` header value (the scheme
 * is case-insensitive; exactly one space), or null.
 */
export function bearerTokenOf(header: string | undefined | null): string | null {
  if (typeof header !== 'string') return null
  const match = /^bearer ([^\s]+)$/i.exec(header)
  return match ? match[1] : null
}
