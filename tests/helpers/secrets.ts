/*
|--------------------------------------------------------------------------
| Secret registry (tests)
|--------------------------------------------------------------------------
|
| Tests remember every secret they see (bearer tokens, distinctive
| plaintexts, unwrapped DEKs); the audit suite, which runs last, asserts
| that none of them reached the run's log file (LOG_FILE). Buffers are
| remembered in the encodings a careless log line would use.
|
*/

const secrets = new Map<string, string>()

/** Shorter values would match log text by chance. */
const MIN_LENGTH = 8

/**
 * Remembers a secret (a string, or bytes remembered as base64, base64url
 * and hex). `label` names it in the audit's failure message.
 */
export function rememberSecret(value: string | Buffer, label = 'secret'): void {
  if (Buffer.isBuffer(value)) {
    if (value.length === 0 || value.every((byte) => byte === 0)) return
    rememberSecret(value.toString('base64'), `${label} (base64)`)
    rememberSecret(value.toString('base64url'), `${label} (base64url)`)
    rememberSecret(value.toString('hex'), `${label} (hex)`)
    return
  }
  if (typeof value !== 'string' || value.length < MIN_LENGTH) return
  if (!secrets.has(value)) secrets.set(value, label)
}

/**
 * Remembers a bearer token and its secret part (after the last `.`).
 */
export function rememberToken(token: string, label = 'token'): void {
  rememberSecret(token, label)
  const secretPart = token.slice(token.lastIndexOf('.') + 1)
  if (secretPart !== token) rememberSecret(secretPart, `${label} (secret part)`)
}

/**
 * Every remembered secret with its label.
 */
export function rememberedSecrets(): Array<{ value: string; label: string }> {
  return [...secrets.entries()].map(([value, label]) => ({ value, label }))
}

/**
 * A distinctive plaintext marker, remembered as a secret: put it inside
 * entry data and the audit proves it never reached a log line.
 */
export function secretMarker(tag = 'marker'): string {
  const value = `plaintext-${tag}-${Math.random().toString(36).slice(2, 12)}-do-not-log`
  rememberSecret(value, `plaintext ${tag}`)
  return value
}
