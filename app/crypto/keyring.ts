/*
|--------------------------------------------------------------------------
| Transit keyring (pure)
|--------------------------------------------------------------------------
|
| The local KMS engine, modelled on Vault Transit: the keyring is plain
| data (versions with their keys and creation times, latest, min
| decryption / encryption / available versions) and every operation is a
| function of it. No I/O, no clock, no randomness of its own: the caller
| passes `now` and fresh key / nonce bytes. Semantics and error messages
| follow Vault's so that the local driver and `kms:serve` behave like it.
|
*/
import { createSecretKey, type KeyObject } from 'node:crypto'
import { seal, open, NONCE_BYTES, KEY_BYTES, type RandomBytes } from '#crypto/aead'
import {
  decodeStdBase64,
  formatVaultCiphertext,
  splitVaultCiphertext,
} from '#crypto/vault_ciphertext'

/**
 * KEK versions encrypt and decrypt many times (every rewrapped row does
 * both): a KeyObject prepared once per key buffer makes each cipher several
 * times cheaper to set up than raw bytes. Held weakly, keyed by the buffer
 * (version keys are never mutated). DEKs do not go through this.
 */
const keyObjects = new WeakMap<Buffer, KeyObject>()

function keyObjectOf(key: Buffer): KeyObject {
  let object = keyObjects.get(key)
  if (!object) {
    object = createSecretKey(key)
    keyObjects.set(key, object)
  }
  return object
}

/** One key version. */
export interface KeyVersion {
  /** AES-256 key bytes. */
  key: Buffer
  /** Creation time, unix seconds. */
  createdAt: number
}

/** A named keyring. */
export interface Keyring {
  name: string
  type: 'aes256-gcm96'
  /** Versions still available (trimmed ones are gone). */
  versions: Record<number, KeyVersion>
  latestVersion: number
  minDecryptionVersion: number
  /** 0 means "latest". */
  minEncryptionVersion: number
  minAvailableVersion: number
  deletionAllowed: boolean
}

/** Error from a keyring operation; `status` is the HTTP status Vault answers. */
export class KeyringError extends Error {
  constructor(
    message: string,
    public status = 400
  ) {
    super(message)
  }
}

/** Public view of a keyring (no key material). */
export interface KeyringInfo {
  name: string
  type: 'aes256-gcm96'
  /** version → creation unix seconds, for versions ≥ min_decryption_version. */
  keys: Record<string, number>
  latest_version: number
  min_decryption_version: number
  min_encryption_version: number
  min_available_version: number
  deletion_allowed: boolean
  supports_encryption: true
  supports_decryption: true
  derived: false
  exportable: false
  auto_rotate_period: number
}

/**
 * Creates a keyring with version 1.
 */
export function createKeyring(name: string, key: Buffer, now: number): Keyring {
  assertKey(key)
  return {
    name,
    type: 'aes256-gcm96',
    versions: { 1: { key, createdAt: now } },
    latestVersion: 1,
    minDecryptionVersion: 1,
    minEncryptionVersion: 0,
    minAvailableVersion: 0,
    deletionAllowed: false,
  }
}

/**
 * Adds version latest+1 (returns a new keyring; the input is not mutated).
 */
export function rotateKeyring(ring: Keyring, key: Buffer, now: number): Keyring {
  assertKey(key)
  const version = ring.latestVersion + 1
  return {
    ...ring,
    versions: { ...ring.versions, [version]: { key, createdAt: now } },
    latestVersion: version,
  }
}

/**
 * The public view Vault's GET keys/:name answers with.
 */
export function keyringInfo(ring: Keyring): KeyringInfo {
  const keys: Record<string, number> = {}
  for (const [version, value] of Object.entries(ring.versions)) {
    if (Number(version) >= ring.minDecryptionVersion) keys[version] = value.createdAt
  }
  return {
    name: ring.name,
    type: ring.type,
    keys,
    latest_version: ring.latestVersion,
    min_decryption_version: ring.minDecryptionVersion,
    min_encryption_version: ring.minEncryptionVersion,
    min_available_version: ring.minAvailableVersion,
    deletion_allowed: ring.deletionAllowed,
    supports_encryption: true,
    supports_decryption: true,
    derived: false,
    exportable: false,
    auto_rotate_period: 0,
  }
}

/**
 * The version new encryptions use, or the requested one after the checks of
 * Vault's keysutil.Policy.EncryptWithFactory (sdk/helper/keysutil/policy.go):
 * 0 / absent means latest; negative, above latest, or below
 * min_encryption_version are refused; then the key lookup (GetKey →
 * safeGetKeyEntry) fails with "no such key version" for a version Vault no
 * longer holds in the policy: below min_decryption_version (archived) or
 * trimmed. So with min_encryption_version 0 and min_decryption_version 2,
 * `key_version: 1` is refused instead of producing a ciphertext that could
 * not be decrypted.
 */
export function encryptionVersion(ring: Keyring, requested?: number): number {
  if (!requested) return ring.latestVersion
  if (!Number.isInteger(requested)) throw new KeyringError('invalid key version')
  if (requested < 0) throw new KeyringError('requested version for encryption is negative')
  if (requested > ring.latestVersion) {
    throw new KeyringError('requested version for encryption is higher than the latest key version')
  }
  if (requested < ring.minEncryptionVersion) {
    throw new KeyringError(
      'requested version for encryption is less than the minimum encryption key version'
    )
  }
  if (requested < ring.minDecryptionVersion || !Object.hasOwn(ring.versions, requested)) {
    throw new KeyringError('no such key version')
  }
  return requested
}

/**
 * Encrypts bytes under a version (default latest) → `vault:vN:…`.
 */
export function encrypt(
  ring: Keyring,
  plaintext: Buffer,
  random: RandomBytes,
  requestedVersion?: number
): string {
  const version = encryptionVersion(ring, requestedVersion)
  const sealed = seal(keyObjectOf(ring.versions[version].key), random(NONCE_BYTES), plaintext)
  return formatVaultCiphertext(version, sealed)
}

/**
 * Decrypts a `vault:vN:…` string with the checks, order and messages of
 * Vault's keysutil.Policy.DecryptWithFactory (sdk/helper/keysutil/policy.go):
 * prefix, fields, version number; version 0 is read as 1 (Vault's
 * compatibility mode with its first releases, where keys started at 0);
 * "version is too new" above the latest; too old below
 * min_decryption_version; then the base64 body, the key lookup
 * (safeGetKeyEntry) and AES-GCM (SymmetricDecryptRaw).
 */
export function decrypt(ring: Keyring, ciphertext: string): Buffer {
  const split = splitVaultCiphertext(ciphertext)
  if (!split.ok) throw new KeyringError(split.error)
  const version = split.version === 0n ? 1n : split.version
  if (version > BigInt(ring.latestVersion)) {
    throw new KeyringError('invalid ciphertext: version is too new')
  }
  if (ring.minDecryptionVersion > 0 && version < BigInt(ring.minDecryptionVersion)) {
    throw new KeyringError('ciphertext or signature version is disallowed by policy (too old)')
  }
  const bytes = decodeStdBase64(split.body)
  if (!bytes) throw new KeyringError('invalid ciphertext: could not decode base64')
  const number = Number(version)
  if (!Object.hasOwn(ring.versions, number)) throw new KeyringError('no such key version')
  if (bytes.length < NONCE_BYTES) throw new KeyringError('invalid ciphertext length')
  const plaintext = open(keyObjectOf(ring.versions[number].key), bytes)
  if (!plaintext) throw new KeyringError('cipher: message authentication failed')
  return plaintext
}

/**
 * Decrypts and re-encrypts under a version (default latest). Like Vault,
 * a ciphertext already at that version is still re-encrypted.
 */
export function rewrap(
  ring: Keyring,
  ciphertext: string,
  random: RandomBytes,
  requestedVersion?: number
): string {
  return encrypt(ring, decrypt(ring, ciphertext), random, requestedVersion)
}

function assertKey(key: Buffer) {
  if (key.length !== KEY_BYTES) throw new RangeError('a key version needs 32 bytes')
}
