/*
|--------------------------------------------------------------------------
| The AWS KMS stand-in's keys on disk (`kms:serve --api aws-kms --state-file`)
|--------------------------------------------------------------------------
|
| Keys (material included), aliases, states and tags as one JSON document,
| sealed with AES-256-GCM under KMS_ROOT_KEY (the local KMS's root key) and
| written atomically (temporary file, fsync, rename; mode 0600) after every
| change, so a restarted stand-in still decrypts what it encrypted. Without
| a state file the keys live in memory only.
|
*/
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { NONCE_BYTES, open, seal } from '#crypto/aead'
import { E_KMS_CONFIG } from '#app/errors'
import type { KeyModel, KeyState } from '#kms/aws_server/key_model'

const FORMAT = 0x01
const AAD = Buffer.from('rewrap/aws-kms-stand-in/state/v1', 'utf8')

interface StoredKey {
  id: string
  createdAt: number
  state: KeyState
  description: string
  tags: Array<[string, string]>
  deletionDate?: number
  pendingWindowInDays?: number
  material: string
}

interface StoredState {
  keys: StoredKey[]
  aliases: Array<{ name: string; targetKeyId: string; createdAt: number; updatedAt: number }>
}

/**
 * Writes the model's keys and aliases to `path`, sealed under `rootKey`.
 */
export function saveState(model: KeyModel, path: string, rootKey: Buffer) {
  const state: StoredState = {
    keys: [...model.keys.values()].map((k) => ({
      id: k.id,
      createdAt: k.createdAt,
      state: k.state,
      description: k.description,
      tags: [...k.tags.entries()],
      deletionDate: k.deletionDate,
      pendingWindowInDays: k.pendingWindowInDays,
      material: k.ring.versions[1].key.toString('base64'),
    })),
    aliases: [...model.aliases.values()].map(({ name, targetKeyId, createdAt, updatedAt }) => ({
      name,
      targetKeyId,
      createdAt,
      updatedAt,
    })),
  }
  const plaintext = Buffer.from(JSON.stringify(state), 'utf8')
  const sealed = seal(rootKey, randomBytes(NONCE_BYTES), plaintext, AAD)
  plaintext.fill(0)
  const temporary = `${path}.${process.pid}.tmp`
  const fd = openSync(temporary, 'w', 0o600)
  try {
    writeSync(fd, Buffer.concat([Buffer.from([FORMAT]), sealed]))
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temporary, path)
}

/**
 * Loads `path` into the model; nothing when the file does not exist yet.
 * A file that does not open under `rootKey` is E_KMS_CONFIG.
 */
export function loadState(model: KeyModel, path: string, rootKey: Buffer) {
  let raw: Buffer
  try {
    raw = readFileSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  const plaintext = raw[0] === FORMAT ? open(rootKey, raw.subarray(1), AAD) : null
  if (!plaintext) {
    throw new E_KMS_CONFIG(['the --state-file does not open under KMS_ROOT_KEY'])
  }
  const state = JSON.parse(plaintext.toString('utf8')) as StoredState
  plaintext.fill(0)
  for (const k of state.keys) {
    model.restore({
      id: k.id,
      createdAt: k.createdAt,
      state: k.state,
      description: k.description,
      tags: new Map(k.tags),
      deletionDate: k.deletionDate,
      pendingWindowInDays: k.pendingWindowInDays,
      material: Buffer.from(k.material, 'base64'),
    })
  }
  for (const a of state.aliases) {
    model.aliases.set(a.name, { ...a, arn: model.aliasArn(a.name) })
  }
}
