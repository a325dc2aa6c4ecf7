/*
|--------------------------------------------------------------------------
| Vault response bodies
|--------------------------------------------------------------------------
*/
import type { RandomBytes } from '#crypto/aead'

/**
 * A request id shaped like Vault's (a v4 UUID from the injected randomness).
 */
export function requestId(random: RandomBytes): string {
  const bytes = Buffer.from(random(16))
  bytes[6] = (bytes[6] & 0x0f) | 0x40
  bytes[8] = (bytes[8] & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * The envelope Vault wraps `data` in.
 */
export function vaultEnvelope(
  id: string,
  data: Record<string, unknown>,
  warnings: string[] = []
): Record<string, unknown> {
  return {
    request_id: id,
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: warnings.length > 0 ? warnings : null,
    auth: null,
    mount_type: 'transit',
  }
}
