/*
|--------------------------------------------------------------------------
| Key Vault stand-in: keys, versions and their crypto (in memory)
|--------------------------------------------------------------------------
|
| Each key version holds its own key material: an RSA key pair (kty RSA /
| RSA-HSM; wrapKey with RSA-OAEP-256 or RSA-OAEP) or 32 random bytes
| (oct-HSM; A256KW, RFC 3394 AES key wrap). Held in this process's memory
| only, like a throwaway vault: a restarted stand-in starts empty. (The
| local keyring engine is AES-GCM only; Key Vault's algorithms need RSA
| pairs and AES-KW keys, so they live here.)
|
*/
import {
  constants,
  createCipheriv,
  createDecipheriv,
  generateKeyPair,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from 'node:crypto'
import { promisify } from 'node:util'
import type { RandomBytes } from '#crypto/aead'

const generateRsa = promisify(generateKeyPair)
const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex')

/** Key types the stand-in creates. */
export type StandInKeyType = 'RSA' | 'RSA-HSM' | 'oct-HSM'

/** One key version. */
export interface StoredVersion {
  id: string
  kty: StandInKeyType
  keyOps: string[]
  enabled: boolean
  /** Unix seconds. */
  created: number
  updated: number
  tags: Record<string, string>
  rsa?: { publicKey: KeyObject; privateKey: KeyObject; n: Buffer; e: Buffer }
  oct?: Buffer
}

/** Why a crypto operation failed (mapped to Key Vault's error shapes by the server). */
export class StandInCryptoError extends Error {}

/**
 * Keys by name; versions in creation order (the last is the current one).
 */
export class StandInKeyStore {
  #keys = new Map<string, StoredVersion[]>()
  #random: RandomBytes
  #now: () => number

  constructor(random: RandomBytes, now: () => number) {
    this.#random = random
    this.#now = now
  }

  /** Names, sorted. */
  names(): string[] {
    return [...this.#keys.keys()].sort()
  }

  /** Versions of a key (oldest first), undefined when unknown. */
  versions(name: string): StoredVersion[] | undefined {
    return this.#keys.get(name)
  }

  /** One version ('' or undefined = current). */
  version(name: string, id?: string): StoredVersion | undefined {
    const versions = this.#keys.get(name)
    if (!versions) return undefined
    return id ? versions.find((v) => v.id === id) : versions.at(-1)
  }

  /** Adds a version (creating the key when new). */
  async add(
    name: string,
    kty: StandInKeyType,
    size: number,
    keyOps: string[],
    tags: Record<string, string>,
    enabled = true
  ): Promise<StoredVersion> {
    const now = this.#now()
    const version: StoredVersion = {
      id: this.#random(16).toString('hex'),
      kty,
      keyOps,
      enabled,
      created: now,
      updated: now,
      tags: { ...tags },
    }
    if (kty === 'oct-HSM') {
      version.oct = this.#random(size / 8)
    } else {
      const { publicKey, privateKey } = await generateRsa('rsa', {
        modulusLength: size,
        publicExponent: 0x10001,
      })
      const jwk = publicKey.export({ format: 'jwk' })
      version.rsa = {
        publicKey,
        privateKey,
        n: Buffer.from(String(jwk.n), 'base64url'),
        e: Buffer.from(String(jwk.e), 'base64url'),
      }
    }
    const versions = this.#keys.get(name) ?? []
    versions.push(version)
    this.#keys.set(name, versions)
    return version
  }

  /** Wraps `value` under a version with `alg`. */
  wrap(version: StoredVersion, alg: string, value: Buffer): Buffer {
    if (version.rsa && (alg === 'RSA-OAEP-256' || alg === 'RSA-OAEP')) {
      return publicEncrypt(
        {
          key: version.rsa.publicKey,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: alg === 'RSA-OAEP-256' ? 'sha256' : 'sha1',
        },
        value
      )
    }
    if (version.oct && alg === 'A256KW' && version.oct.length === 32) {
      if (value.length < 16 || value.length % 8 !== 0) {
        throw new StandInCryptoError('A256KW needs a multiple of 8 bytes, at least 16')
      }
      const cipher = createCipheriv('id-aes256-wrap', version.oct, KW_IV)
      return Buffer.concat([cipher.update(value), cipher.final()])
    }
    throw new StandInCryptoError(`Algorithm ${alg} is not supported for key type ${version.kty}`)
  }

  /** Unwraps; StandInCryptoError when the bytes do not open. */
  unwrap(version: StoredVersion, alg: string, value: Buffer): Buffer {
    try {
      if (version.rsa && (alg === 'RSA-OAEP-256' || alg === 'RSA-OAEP')) {
        return privateDecrypt(
          {
            key: version.rsa.privateKey,
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: alg === 'RSA-OAEP-256' ? 'sha256' : 'sha1',
          },
          value
        )
      }
      if (version.oct && alg === 'A256KW') {
        const decipher = createDecipheriv('id-aes256-wrap', version.oct, KW_IV)
        return Buffer.concat([decipher.update(value), decipher.final()])
      }
    } catch {
      throw new StandInCryptoError('Unwrap failed: the value could not be decrypted')
    }
    throw new StandInCryptoError(`Algorithm ${alg} is not supported for key type ${version.kty}`)
  }
}
