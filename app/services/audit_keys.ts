/*
|--------------------------------------------------------------------------
| The service's own AID (it signs the audit trail)
|--------------------------------------------------------------------------
|
| AUDIT_SIGNING_SEED (base64url of 32 bytes) is the root of a key
| sequence: the Ed25519 seed of key n is
|   HKDF-SHA256(ikm = AUDIT_SIGNING_SEED, salt = "", info = "rewrap/audit-key/<n>", 32 bytes).
| Establishment event n of the service's KEL (inception: n = 0, then
| each rotation) signs with key n and commits to the digest of key n + 1
| (pre-rotation). `audit:rotate-key` moves to the committed key. The KEL
| is stored in `service_key_events`; the seed and the derived keys never
| leave this module (no log, no table, no error message).
|
*/
import { hkdfSync } from 'node:crypto'
import { Signer } from '#app/governance/signify'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import { E_AUDIT_KEY_MISMATCH, E_AUDIT_NOT_CONFIGURED } from '#app/errors'
import { nextKeyDigest, replayKel, type KelEntry } from '#app/governance/key_events'
import type { KeyState } from '#app/governance/key_state'
import { serialize } from '#app/governance/said'
import { signIndexed, type SigningEstablishment } from '#app/governance/signatures'

/** A reader of the KEL table (the app's connection or a transaction). */
type Client = Pick<TransactionClientContract, 'rawQuery'>

/** What signs the next audit record. */
export type ServiceKey = { state: KeyState; est: SigningEstablishment; signer: Signer }

/** Decodes AUDIT_SIGNING_SEED; E_AUDIT_NOT_CONFIGURED when absent or not 32 bytes. */
export function parseAuditSeed(value: string | undefined): Uint8Array {
  if (!value) throw new E_AUDIT_NOT_CONFIGURED(['AUDIT_SIGNING_SEED is not set'])
  const raw = /^[A-Za-z0-9_-]+={0,2}$/.test(value) ? Buffer.from(value, 'base64url') : undefined
  if (!raw || raw.length !== 32) {
    throw new E_AUDIT_NOT_CONFIGURED(['AUDIT_SIGNING_SEED must be base64url of 32 bytes'])
  }
  return new Uint8Array(raw)
}

/** The signer of key `n` of the sequence rooted in `seed`. */
export function serviceSigner(seed: Uint8Array, n: number): Signer {
  const raw = new Uint8Array(
    hkdfSync('sha256', seed, new Uint8Array(0), `rewrap/audit-key/${n}`, 32)
  )
  return new Signer({ raw, transferable: true })
}

function signed(event: KelEntry['event'], signer: Signer): KelEntry {
  return { event, sigs: signIndexed(serialize(event).raw, [signer]) }
}

/**
 * The event builders, imported when the service makes a key event (they load
 * signify-ts' barrel and mathjs, which a process that only signs never needs).
 */
function eventBuilders() {
  return import('#app/governance/key_event_builders')
}

/** The service's inception event: key 0, committing to key 1. */
export async function serviceInception(seed: Uint8Array): Promise<KelEntry> {
  const { makeInception } = await eventBuilders()
  const event = makeInception({
    keys: [serviceSigner(seed, 0).verfer.qb64],
    nextDigests: [nextKeyDigest(serviceSigner(seed, 1).verfer.qb64)],
  })
  return signed(event, serviceSigner(seed, 0))
}

/** The rotation after `state`: key sn + 1 (the committed one), committing to key sn + 2. */
export async function serviceRotation(seed: Uint8Array, state: KeyState): Promise<KelEntry> {
  const { makeRotation } = await eventBuilders()
  const key = serviceSigner(seed, state.sn + 1)
  const event = makeRotation(state, {
    keys: [key.verfer.qb64],
    nextDigests: [nextKeyDigest(serviceSigner(seed, state.sn + 2).verfer.qb64)],
  })
  return signed(event, key)
}

/** The stored service KEL, in order (empty before the first record). */
export async function loadServiceKel(client: Client): Promise<KelEntry[]> {
  const { rows } = await client.rawQuery(
    'SELECT event, signatures FROM service_key_events ORDER BY sn'
  )
  return rows.map((row: { event: string; signatures: string }) => ({
    event: JSON.parse(row.event),
    sigs: JSON.parse(row.signatures),
  }))
}

/** Stores one KEL entry. */
export async function storeKelEntry(client: Client, entry: KelEntry) {
  await client.rawQuery(
    'INSERT INTO service_key_events (sn, said, event, signatures) VALUES (?, ?, ?, ?)',
    [
      Number.parseInt(String(entry.event.s), 16),
      String(entry.event.d),
      JSON.stringify(entry.event),
      JSON.stringify(entry.sigs),
    ]
  )
}

/**
 * The service key in force: replays the stored KEL (incepting it on first
 * use) and checks that its current key is the seed's key of that sequence
 * number. Call under the audit lock.
 */
export async function currentServiceKey(client: Client, seed: Uint8Array): Promise<ServiceKey> {
  let kel = await loadServiceKel(client)
  if (kel.length === 0) {
    kel = [await serviceInception(seed)]
    await storeKelEntry(client, kel[0])
  }
  const replayed = replayKel(kel)
  if (!replayed.ok) throw new E_AUDIT_KEY_MISMATCH([`stored service KEL: ${replayed.reason}`])
  const state = replayed.state
  const signer = serviceSigner(seed, state.sn)
  if (state.keys.length !== 1 || state.keys[0] !== signer.verfer.qb64) {
    throw new E_AUDIT_KEY_MISMATCH([
      `AUDIT_SIGNING_SEED does not hold the current key of service AID ${state.aid}`,
    ])
  }
  return { state, signer, est: { aid: state.aid, sn: state.sn, said: state.lastSaid } }
}
