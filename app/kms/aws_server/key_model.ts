/*
|--------------------------------------------------------------------------
| The stand-in's KMS keys and aliases (in memory)
|--------------------------------------------------------------------------
|
| Symmetric encryption keys only (SYMMETRIC_DEFAULT): each key holds its
| material as a one-version keyring of the local engine (app/crypto/
| keyring.ts) plus what KMS keeps about it — state (Enabled, Disabled,
| PendingDeletion), creation and deletion dates, description, tags — and
| the account's aliases. Key ids, ARNs, alias names and alias ARNs resolve
| as KMS resolves a `KeyId` parameter.
|
| Ciphertext blobs: `0x01 ‖ key id (36 ASCII bytes) ‖ nonce ‖ AES-256-GCM
| ciphertext ‖ tag`, the associated data binding the key id and the
| canonical encryption context, so a changed context or another key fails
| as InvalidCiphertextException / IncorrectKeyException, as on AWS.
|
*/
import { randomBytes, randomUUID } from 'node:crypto'
import { KEY_BYTES, NONCE_BYTES, open, seal, type RandomBytes } from '#crypto/aead'
import { createKeyring, type Keyring } from '#crypto/keyring'
import {
  AwsKmsError,
  aliasNotFound,
  disabled,
  incorrectKey,
  invalidCiphertext,
  keyNotFound,
  pendingDeletion,
} from '#kms/aws_server/aws_error'

/** KMS key states the stand-in models. */
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion'

/** One KMS key. */
export interface KmsKey {
  id: string
  arn: string
  createdAt: number
  state: KeyState
  description: string
  tags: Map<string, string>
  deletionDate?: number
  pendingWindowInDays?: number
  ring: Keyring
}

/** One alias. */
export interface KmsAlias {
  name: string
  arn: string
  targetKeyId: string
  createdAt: number
  updatedAt: number
}

const BLOB_VERSION = 0x01
const ID_BYTES = 36

/**
 * Keys and aliases of one account and region.
 */
export class KeyModel {
  readonly keys = new Map<string, KmsKey>()
  readonly aliases = new Map<string, KmsAlias>()

  constructor(
    public region: string,
    public account = '111122223333',
    private now: () => number = () => Date.now() / 1000,
    private random: RandomBytes = randomBytes
  ) {}

  /** The model's clock, epoch seconds. */
  nowSeconds(): number {
    return this.now()
  }

  /** Fresh random bytes (data keys). */
  randomBytes(size: number): Buffer {
    return this.random(size)
  }

  /** ARN of a key id. */
  keyArn(id: string) {
    return `arn:aws:kms:${this.region}:${this.account}:key/${id}`
  }

  /** ARN of an alias name. */
  aliasArn(name: string) {
    return `arn:aws:kms:${this.region}:${this.account}:${name}`
  }

  /** Creates an Enabled symmetric key. */
  create(description: string, tags: Array<[string, string]>): KmsKey {
    const id = randomUUID()
    const createdAt = this.now()
    const key: KmsKey = {
      id,
      arn: this.keyArn(id),
      createdAt,
      state: 'Enabled',
      description,
      tags: new Map(tags),
      ring: createKeyring(id, this.random(KEY_BYTES), Math.floor(createdAt)),
    }
    this.keys.set(id, key)
    return key
  }

  /** Puts back a key saved by state_file.ts. */
  restore(saved: Omit<KmsKey, 'arn' | 'ring'> & { material: Buffer }) {
    const { material, ...rest } = saved
    this.keys.set(saved.id, {
      ...rest,
      arn: this.keyArn(saved.id),
      ring: createKeyring(saved.id, material, Math.floor(saved.createdAt)),
    })
  }

  /**
   * Resolves a KeyId parameter (key id, key ARN, alias name, alias ARN).
   * `aliases: false` for operations that take key ids and ARNs only.
   */
  resolve(keyId: string, aliases = true): KmsKey {
    const aliasPrefix = `arn:aws:kms:${this.region}:${this.account}:alias/`
    let id = keyId
    if (keyId.startsWith('alias/') || keyId.startsWith(aliasPrefix)) {
      const name = keyId.startsWith('alias/') ? keyId : keyId.slice(aliasPrefix.length - 6)
      const alias = aliases ? this.aliases.get(name) : undefined
      if (!alias) {
        if (!aliases) throw new AwsKmsError('NotFoundException', `Invalid keyId '${keyId}'`)
        throw aliasNotFound(this.aliasArn(name))
      }
      id = alias.targetKeyId
    } else if (keyId.startsWith('arn:')) {
      const prefix = `arn:aws:kms:${this.region}:${this.account}:key/`
      if (!keyId.startsWith(prefix)) throw keyNotFound(keyId)
      id = keyId.slice(prefix.length)
    }
    const key = this.keys.get(id)
    if (!key) throw keyNotFound(this.keyArn(id))
    return key
  }

  /** Throws unless the key may be used for cryptography. */
  usable(key: KmsKey): KmsKey {
    if (key.state === 'Disabled') throw disabled(key.arn)
    if (key.state === 'PendingDeletion') throw pendingDeletion(key.arn)
    return key
  }

  /** Throws when the key is pending deletion (most management calls). */
  notPendingDeletion(key: KmsKey): KmsKey {
    if (key.state === 'PendingDeletion') throw pendingDeletion(key.arn)
    return key
  }

  /** Encrypts under a usable key, bound to the encryption context. */
  encrypt(key: KmsKey, plaintext: Buffer, context: Record<string, string>): Buffer {
    this.usable(key)
    const sealed = seal(
      key.ring.versions[1].key,
      this.random(NONCE_BYTES),
      plaintext,
      aad(key.id, context)
    )
    return Buffer.concat([Buffer.from([BLOB_VERSION]), Buffer.from(key.id, 'ascii'), sealed])
  }

  /**
   * Decrypts a blob. `expected` (a KeyId given by the caller) must name the
   * key the blob was made with (IncorrectKeyException otherwise).
   */
  decrypt(
    blob: Buffer,
    context: Record<string, string>,
    expected?: KmsKey
  ): { key: KmsKey; plaintext: Buffer } {
    if (blob.length < 1 + ID_BYTES + NONCE_BYTES + 16 || blob[0] !== BLOB_VERSION) {
      throw invalidCiphertext()
    }
    const id = blob.subarray(1, 1 + ID_BYTES).toString('ascii')
    const key = this.keys.get(id)
    if (!key) throw invalidCiphertext()
    if (expected && expected.id !== key.id) throw incorrectKey()
    this.usable(key)
    const plaintext = open(key.ring.versions[1].key, blob.subarray(1 + ID_BYTES), aad(id, context))
    if (!plaintext) throw invalidCiphertext()
    return { key, plaintext }
  }
}

/** Associated data: key id and the encryption context, keys sorted. */
function aad(keyId: string, context: Record<string, string>): Buffer {
  const pairs = Object.keys(context)
    .sort()
    .map((k) => [k, context[k]])
  return Buffer.from(JSON.stringify([keyId, pairs]), 'utf8')
}
