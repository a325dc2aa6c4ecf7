/*
|--------------------------------------------------------------------------
| KMS error classification
|--------------------------------------------------------------------------
|
| Vault Transit (and the local engine, which copies its messages) reports
| errors as text. This maps a message to a stable Rewrap code, and a code
| to the error to throw. Messages are Vault's own (no key material).
|
*/
import {
  E_CIPHERTEXT_INVALID,
  E_KEK_NOT_FOUND,
  E_KEY_VERSION_DISALLOWED,
  E_KMS_DENIED,
  E_KMS_REJECTED,
  E_KMS_UNAVAILABLE,
} from '#app/errors'

/** Stable codes a KMS item or call can fail with. */
export type KmsErrorCode =
  | 'E_KEK_NOT_FOUND'
  | 'E_CIPHERTEXT_INVALID'
  | 'E_KEY_VERSION_DISALLOWED'
  | 'E_KMS_DENIED'
  | 'E_KMS_REJECTED'
  | 'E_KMS_UNAVAILABLE'

/**
 * Classifies a Vault/local error message (and HTTP status when known).
 */
export function classifyKmsError(message: string, status = 400): KmsErrorCode {
  const text = message.toLowerCase()
  if (status === 403 || text.includes('permission denied')) return 'E_KMS_DENIED'
  if (status === 429 || status >= 500) return 'E_KMS_UNAVAILABLE'
  if (
    status === 404 ||
    text.includes('key not found') ||
    text.includes('no existing key') ||
    // Vault's trim answers this for an unknown key.
    text.includes('invalid key name')
  ) {
    return 'E_KEK_NOT_FOUND'
  }
  if (
    text.includes('disallowed by policy') ||
    text.includes('less than the minimum') ||
    // Vault's keysutil safeGetKeyEntry: the version was retired (below
    // min_decryption_version) or trimmed, e.g. a rewrap to such a key_version.
    text.includes('no such key version')
  ) {
    return 'E_KEY_VERSION_DISALLOWED'
  }
  if (
    text.includes('invalid ciphertext') ||
    text.includes('message authentication failed') ||
    text.includes('invalid key version') ||
    text.includes('illegal base64') ||
    text.includes('base64')
  ) {
    return 'E_CIPHERTEXT_INVALID'
  }
  return 'E_KMS_REJECTED'
}

/** What a client sees of a KMS-side ciphertext failure (the KMS's text stays in the log). */
const KMS_CIPHERTEXT_MESSAGE = 'the KMS could not unwrap the data key'

/**
 * The error to throw for a code. Its message is fixed per code; `detail`
 * (the KMS's own text or a transport error, which can name hosts and users)
 * is kept as the error's `cause` only, for the KMS boundary's log line.
 */
export function kmsError(code: KmsErrorCode, detail: string, kekName: string): Error {
  const options = { cause: new KmsDetail(detail) }
  switch (code) {
    case 'E_KEK_NOT_FOUND':
      return new E_KEK_NOT_FOUND([kekName], options)
    case 'E_CIPHERTEXT_INVALID':
      return new E_CIPHERTEXT_INVALID([KMS_CIPHERTEXT_MESSAGE], options)
    case 'E_KEY_VERSION_DISALLOWED':
      return new E_KEY_VERSION_DISALLOWED([], options)
    case 'E_KMS_DENIED':
      return new E_KMS_DENIED([], options)
    case 'E_KMS_UNAVAILABLE':
      return new E_KMS_UNAVAILABLE([], options)
    default:
      return new E_KMS_REJECTED([], options)
  }
}

/**
 * What the KMS (or the transport to it) said: for operators' logs only.
 */
export class KmsDetail extends Error {
  name = 'KmsDetail'
}

/** The KMS detail behind an error, if it carries one. */
export function kmsDetailOf(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause
  return cause instanceof KmsDetail ? cause.message : undefined
}
