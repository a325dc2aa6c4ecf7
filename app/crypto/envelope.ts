/*
|--------------------------------------------------------------------------
| Entry envelope (pure)
|--------------------------------------------------------------------------
|
| The payload of a vault entry, sealed with the entry's own DEK:
|
|   byte 0      format version (0x01)
|   bytes 1-12  GCM nonce
|   …           AES-256-GCM ciphertext of the UTF-8 JSON payload
|   last 16     GCM tag
|
| Associated data binds the ciphertext to its row:
|   "rewrap/entry/v1\0" ‖ kek_name ‖ "\0" ‖ decimal id
| so a ciphertext moved to another row, or re-labelled to another KEK,
| fails to open. A wrapped DEK moved to another row yields that row's DEK,
| which cannot open this row's ciphertext either.
|
*/
import { seal, open, NONCE_BYTES, TAG_BYTES, KEY_BYTES, type RandomBytes } from '#crypto/aead'

/** Format byte of the current envelope version. */
export const ENVELOPE_V1 = 0x01

/** Why an envelope could not be opened. */
export class EnvelopeError extends Error {
  /** Error code (stable). */
  code = 'E_CIPHERTEXT_INVALID'
}

/**
 * The associated data that binds an envelope to its row.
 */
export function entryAad(id: string | number | bigint, kekName: string): Buffer {
  return Buffer.from(`rewrap/entry/v1\0${kekName}\0${String(id)}`, 'utf8')
}

/**
 * Generates a fresh 256-bit DEK.
 */
export function generateDek(random: RandomBytes): Buffer {
  return random(KEY_BYTES)
}

/**
 * Seals plaintext bytes into a v1 envelope.
 */
export function sealEnvelope(dek: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const sealed = seal(dek, nonce, plaintext, aad)
  return Buffer.concat([Buffer.from([ENVELOPE_V1]), sealed])
}

/**
 * Opens a v1 envelope; throws EnvelopeError (no detail about the bytes) when
 * the format is unknown or it does not authenticate.
 */
export function openEnvelope(dek: Buffer, envelope: Buffer, aad: Buffer): Buffer {
  if (envelope.length < 1 + NONCE_BYTES + TAG_BYTES) {
    throw new EnvelopeError('envelope too short')
  }
  if (envelope[0] !== ENVELOPE_V1) {
    throw new EnvelopeError('unknown envelope format')
  }
  const plaintext = open(dek, envelope.subarray(1), aad)
  if (!plaintext) throw new EnvelopeError('envelope failed authentication')
  return plaintext
}

/**
 * Seals a JSON value for a row: fresh nonce from `random`.
 */
export function sealJson(dek: Buffer, value: unknown, aad: Buffer, random: RandomBytes): Buffer {
  return sealEnvelope(dek, random(NONCE_BYTES), Buffer.from(JSON.stringify(value), 'utf8'), aad)
}

/**
 * Opens a row's envelope and parses its JSON value.
 */
export function openJson(dek: Buffer, envelope: Buffer, aad: Buffer): unknown {
  return JSON.parse(openEnvelope(dek, envelope, aad).toString('utf8'))
}
