/*
|--------------------------------------------------------------------------
| Approver keystores
|--------------------------------------------------------------------------
|
| An approver's Ed25519 seeds (current and next, for pre-rotation) sealed
| with a passphrase: scrypt derives a 256-bit key, AES-256-GCM encrypts the
| seeds, and the header (format, AID, KDF and cipher parameters) is the
| GCM additional data, so altering any parameter fails like a wrong
| passphrase. The file is JSON; no seed is in it in clear. Pure: the
| randomness is passed in, nothing is read or written here.
|
*/
import { createCipheriv, createDecipheriv, scryptSync } from 'node:crypto'
import { Signer } from './signify.js'
import { E_KEYSTORE_INVALID, E_KEYSTORE_PASSPHRASE } from '../errors.js'

/** Format tag of a keystore file. */
export const KEYSTORE_FORMAT = 'rewrap-keystore/1'

/** scrypt cost parameters. */
export type ScryptParams = { n: number; r: number; p: number }

/** Default cost: N = 2^17, r = 8, p = 1 (128 MiB, OWASP's scrypt minimum). */
export const DEFAULT_SCRYPT: ScryptParams = { n: 2 ** 17, r: 8, p: 1 }

/** The secrets a keystore holds: 32-byte Ed25519 seeds. */
export type KeystoreSecrets = { aid: string; current: Uint8Array[]; next: Uint8Array[] }

type Header = {
  format: typeof KEYSTORE_FORMAT
  aid: string
  kdf: { name: 'scrypt'; n: number; r: number; p: number; salt: string }
  cipher: { name: 'aes-256-gcm'; nonce: string }
}

type KeystoreFile = Header & { ciphertext: string }

const B64URL_RE = /^[A-Za-z0-9_-]+$/

function deriveKey(passphrase: string, salt: Buffer, kdf: ScryptParams): Buffer {
  const maxmem = 128 * kdf.n * kdf.r * kdf.p + 16 * 1024 * 1024
  return scryptSync(passphrase.normalize('NFKC'), salt, 32, {
    N: kdf.n,
    r: kdf.r,
    p: kdf.p,
    maxmem,
  })
}

function headerBytes(header: Header): Buffer {
  const { format, aid, kdf, cipher } = header
  return Buffer.from(JSON.stringify({ format, aid, kdf, cipher }), 'utf8')
}

function checkParams(kdf: ScryptParams) {
  const powerOfTwo =
    Number.isSafeInteger(kdf.n) &&
    kdf.n >= 2 ** 10 &&
    kdf.n <= 2 ** 20 &&
    (kdf.n & (kdf.n - 1)) === 0
  const small = (v: number, max: number) => Number.isSafeInteger(v) && v >= 1 && v <= max
  if (!powerOfTwo || !small(kdf.r, 32) || !small(kdf.p, 16)) {
    throw new E_KEYSTORE_INVALID(['scrypt parameters out of range'])
  }
}

function checkSeeds(seeds: Uint8Array[], what: string) {
  if (seeds.length === 0 || seeds.some((seed) => seed.length !== 32)) {
    throw new E_KEYSTORE_INVALID([`${what} seeds must be 32 bytes each`])
  }
}

/**
 * Seals the seeds under `passphrase` and returns the keystore file text
 * (JSON). `random` supplies the 16-byte salt and the 12-byte nonce.
 */
export function encodeKeystore(
  secrets: KeystoreSecrets,
  passphrase: string,
  random: (bytes: number) => Uint8Array,
  cost: ScryptParams = DEFAULT_SCRYPT
): string {
  if (passphrase.length === 0) throw new E_KEYSTORE_INVALID(['empty passphrase'])
  checkParams(cost)
  checkSeeds(secrets.current, 'current')
  checkSeeds(secrets.next, 'next')
  const salt = Buffer.from(random(16))
  const nonce = Buffer.from(random(12))
  const header: Header = {
    format: KEYSTORE_FORMAT,
    aid: secrets.aid,
    kdf: { name: 'scrypt', ...cost, salt: salt.toString('base64url') },
    cipher: { name: 'aes-256-gcm', nonce: nonce.toString('base64url') },
  }
  const plaintext = Buffer.from(
    JSON.stringify({
      current: secrets.current.map((raw) => new Signer({ raw }).qb64),
      next: secrets.next.map((raw) => new Signer({ raw }).qb64),
    }),
    'utf8'
  )
  const key = deriveKey(passphrase, salt, cost)
  try {
    const cipher = createCipheriv('aes-256-gcm', key, nonce)
    cipher.setAAD(headerBytes(header))
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
    const file: KeystoreFile = { ...header, ciphertext: sealed.toString('base64url') }
    return JSON.stringify(file, null, 2) + '\n'
  } finally {
    key.fill(0)
    plaintext.fill(0)
  }
}

function parseFile(text: string): KeystoreFile {
  let file: KeystoreFile
  try {
    file = JSON.parse(text) as KeystoreFile
  } catch {
    throw new E_KEYSTORE_INVALID(['not JSON'])
  }
  const ok =
    file?.format === KEYSTORE_FORMAT &&
    typeof file.aid === 'string' &&
    file.kdf?.name === 'scrypt' &&
    file.cipher?.name === 'aes-256-gcm' &&
    [file.kdf.salt, file.cipher.nonce, file.ciphertext].every(
      (v) => typeof v === 'string' && B64URL_RE.test(v)
    )
  if (!ok) throw new E_KEYSTORE_INVALID([`not a ${KEYSTORE_FORMAT} file`])
  checkParams(file.kdf)
  return file
}

/**
 * Opens a keystore file with `passphrase`. Throws `E_KEYSTORE_PASSPHRASE`
 * when the passphrase is wrong or the file was altered, `E_KEYSTORE_INVALID`
 * when it is not a keystore.
 */
export function decodeKeystore(text: string, passphrase: string): KeystoreSecrets {
  const file = parseFile(text)
  const sealed = Buffer.from(file.ciphertext, 'base64url')
  const nonce = Buffer.from(file.cipher.nonce, 'base64url')
  if (sealed.length < 17 || nonce.length !== 12) throw new E_KEYSTORE_INVALID(['truncated'])
  const key = deriveKey(passphrase, Buffer.from(file.kdf.salt, 'base64url'), file.kdf)
  let plaintext: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce)
    decipher.setAAD(headerBytes(file))
    decipher.setAuthTag(sealed.subarray(sealed.length - 16))
    plaintext = Buffer.concat([
      decipher.update(sealed.subarray(0, sealed.length - 16)),
      decipher.final(),
    ])
  } catch {
    throw new E_KEYSTORE_PASSPHRASE()
  } finally {
    key.fill(0)
  }
  try {
    const seeds = JSON.parse(plaintext.toString('utf8')) as { current: string[]; next: string[] }
    const raw = (qb64: string) => new Uint8Array(new Signer({ qb64 }).raw)
    return { aid: file.aid, current: seeds.current.map(raw), next: seeds.next.map(raw) }
  } catch {
    throw new E_KEYSTORE_INVALID(['sealed content is not a seed list'])
  } finally {
    plaintext.fill(0)
  }
}

/** Signers (transferable Ed25519) for the current and next seeds of a keystore. */
export function keystoreSigners(secrets: KeystoreSecrets): { current: Signer[]; next: Signer[] } {
  const signer = (raw: Uint8Array) => new Signer({ raw, transferable: true })
  return { current: secrets.current.map(signer), next: secrets.next.map(signer) }
}
