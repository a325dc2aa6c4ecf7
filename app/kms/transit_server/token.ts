import { createHash, timingSafeEqual } from 'node:crypto'

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
