/*
|--------------------------------------------------------------------------
| AES-256-GCM primitives (pure)
|--------------------------------------------------------------------------
*/
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto'

/** Bytes of a GCM nonce. */
export const NONCE_BYTES = 12
/** Bytes of a GCM tag. */
export const TAG_BYTES = 16
/** Bytes of an AES-256 key. */
export const KEY_BYTES = 32

/** A source of random bytes, injected so tests are deterministic. */
export type RandomBytes = (size: number) => Buffer

/**
 * Seals `plaintext` under `key` (bytes, or a prepared KeyObject: cheaper for a
 * key used many times) with `nonce`; returns `nonce ‖ ciphertext ‖ tag`.
 */
export function seal(
  key: Buffer | KeyObject,
  nonce: Buffer,
  plaintext: Buffer,
  aad?: Buffer
): Buffer {
  const size = Buffer.isBuffer(key) ? key.length : key.symmetricKeySize
  if (size !== KEY_BYTES) throw new RangeError('AES-256-GCM needs a 32-byte key')
  if (nonce.length !== NONCE_BYTES) throw new RangeError('AES-256-GCM needs a 12-byte nonce')
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  if (aad) cipher.setAAD(aad)
  const body = cipher.update(plaintext)
  cipher.final()
  return Buffer.concat([nonce, body, cipher.getAuthTag()])
}

/**
 * Opens `nonce ‖ ciphertext ‖ tag`; returns null when it does not
 * authenticate (wrong key, wrong AAD, tampered bytes).
 */
export function open(key: Buffer | KeyObject, sealed: Buffer, aad?: Buffer): Buffer | null {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return null
  const nonce = sealed.subarray(0, NONCE_BYTES)
  const tag = sealed.subarray(sealed.length - TAG_BYTES)
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)
  const decipher = createDecipheriv('aes-256-gcm', key, nonce)
  decipher.setAuthTag(tag)
  if (aad) decipher.setAAD(aad)
  try {
    const out = decipher.update(body)
    decipher.final()
    return out
  } catch {
    return null
  }
}
