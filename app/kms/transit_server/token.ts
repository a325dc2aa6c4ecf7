/*
|--------------------------------------------------------------------------
| The transit server's token: strength, presentation, comparison
|--------------------------------------------------------------------------
*/
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { E_KMS_CONFIG } from '#app/errors'

/** Shortest token the server accepts (e.g. `openssl rand -base64 32` gives 44). */
export const MIN_TOKEN_LENGTH = 24

/**
 * Throws E_KMS_CONFIG unless `token` is at least {@link MIN_TOKEN_LENGTH}
 * characters (the message never quotes it).
 */
export function assertTokenStrength(token: string | undefined): asserts token is string {
  if (!token) throw new E_KMS_CONFIG(['the transit server needs a token'])
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new E_KMS_CONFIG([
      `the kms:serve token is ${token.length} characters; at least ${MIN_TOKEN_LENGTH} are required (e.g. openssl rand -base64 32)`,
    ])
  }
}

/**
 * The token a request presents, as Vault reads it: `X-Vault-Token`, else
 * `Authorization: Bearer <token>`.
 */
export function presentedToken(headers: IncomingHttpHeaders): string | undefined {
  const vaultToken = headers['x-vault-token']
  const direct = Array.isArray(vaultToken) ? vaultToken[0] : vaultToken
  if (direct) return direct
  const match = /^bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')
  return match?.[1]
}

/**
 * Compares a presented token with the expected one in constant time
 * (both are hashed first, so lengths leak nothing either).
 */
export function tokensMatch(presented: string | undefined, expected: string): boolean {
  if (typeof presented !== 'string' || presented.length === 0) return false
  const a = createHash('sha256').update(presented, 'utf8').digest()
  const b = createHash('sha256').update(expected, 'utf8').digest()
  return timingSafeEqual(a, b)
}
