/*
|--------------------------------------------------------------------------
| Strict base64 (Go's base64.StdEncoding, as Vault decodes)
|--------------------------------------------------------------------------
*/

const ALPHABET = /^[A-Za-z0-9+/]$/

/** Result of a strict decode: bytes, or Go's error text (no input echoed). */
export type Base64Result = { ok: true; bytes: Buffer } | { ok: false; error: string }

/**
 * Decodes standard, padded base64; rejects anything Node would silently accept.
 */
export function decodeBase64Strict(value: string): Base64Result {
  const firstBad = firstInvalidByte(value)
  if (firstBad !== -1) return { ok: false, error: `illegal base64 data at input byte ${firstBad}` }
  return { ok: true, bytes: Buffer.from(value, 'base64') }
}

function firstInvalidByte(value: string): number {
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0
  const body = value.length - padding
  for (let i = 0; i < body; i++) {
    if (!ALPHABET.test(value[i])) return i
  }
  if (value.length % 4 !== 0) return value.length - (value.length % 4)
  return -1
}
