/*
|--------------------------------------------------------------------------
| Keyring access shared by the handlers
|--------------------------------------------------------------------------
*/
import { KEY_BYTES } from '#crypto/aead'
import { createKeyring, keyringInfo, KeyringError, type Keyring } from '#crypto/keyring'
import { badRequest } from '#kms/transit_server/http_error'
import type { TransitEngine } from '#kms/transit_server/types'

/** The only key type this server implements. */
export const KEY_TYPE = 'aes256-gcm96'

/**
 * Loads a key or answers 400 with Vault's message for that endpoint.
 */
export async function requireKey(
  engine: TransitEngine,
  name: string,
  notFoundMessage = 'encryption key not found'
): Promise<Keyring> {
  const ring = await engine.store.load(name)
  if (!ring) throw badRequest(notFoundMessage)
  return ring
}

/**
 * Loads a key, creating it (version 1) when unknown. `created` is false
 * when it already existed (also when another request created it meanwhile).
 */
export async function upsertKey(
  engine: TransitEngine,
  name: string
): Promise<{ ring: Keyring; created: boolean }> {
  const existing = await engine.store.load(name)
  if (existing) return { ring: existing, created: false }
  const ring = createKeyring(name, engine.random(KEY_BYTES), engine.now())
  try {
    await engine.store.insert(ring)
    return { ring, created: true }
  } catch (error) {
    if (!(error instanceof KeyringError) || error.status !== 409) throw error
    const raced = await engine.store.load(name)
    if (!raced) throw error
    return { ring: raced, created: false }
  }
}

/**
 * Applies a change under the store's lock; 400 with `notFoundMessage` when unknown.
 */
export async function changeKey(
  engine: TransitEngine,
  name: string,
  change: (ring: Keyring) => Keyring,
  notFoundMessage: string
): Promise<Keyring> {
  const next = await engine.store.update(name, change)
  if (!next) throw badRequest(notFoundMessage)
  return next
}

/**
 * The `data` of Vault's key read (no key material).
 */
export function keyView(ring: Keyring): Record<string, unknown> {
  return {
    ...keyringInfo(ring),
    allow_plaintext_backup: false,
    imported_key: false,
    supports_derivation: true,
    supports_signing: false,
  }
}
