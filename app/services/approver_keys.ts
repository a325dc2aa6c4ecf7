/*
|--------------------------------------------------------------------------
| An approver's own keys (client side of the approver commands)
|--------------------------------------------------------------------------
|
| Makes an approver's seeds, its signed inception and its rotations, and
| the role authority's credentials and revocations, from a keystore. Runs
| where the approver is: seeds stay in memory here and in the keystore
| file; only signed events and documents leave. Randomness and time are
| passed in.
|
*/
import { Signer } from '#app/governance/signify'
import { encodeMessage } from '#app/governance/cesr_stream'
import {
  issueRoleCredential,
  revokeRoleCredential,
  type RoleCredential,
  type SignedCredential,
  type SignedRevocation,
} from '#app/governance/credentials'
import { makeInception, makeRotation } from '#app/governance/key_event_builders'
import { nextKeyDigest } from '#app/governance/key_events'
import type { KeyState } from '#app/governance/key_state'
import { type KeystoreSecrets, keystoreSigners } from '#app/governance/keystore'
import { serialize } from '#app/governance/said'
import { signIndexed, type SigningEstablishment } from '#app/governance/signatures'

/** Source of random bytes (crypto.randomBytes in the commands). */
export type Random = (bytes: number) => Uint8Array

const signer = (raw: Uint8Array) => new Signer({ raw, transferable: true })

/** A new approver: its secrets (for the keystore) and its signed inception (CESR text). */
export function createApprover(random: Random): {
  aid: string
  inception: string
  secrets: KeystoreSecrets
} {
  const current = random(32)
  const next = random(32)
  const event = makeInception({
    keys: [signer(current).verfer.qb64],
    nextDigests: [nextKeyDigest(signer(next).verfer.qb64)],
  })
  const sigs = signIndexed(serialize(event).raw, [signer(current)])
  const aid = event.i as string
  return {
    aid,
    inception: encodeMessage({ event, sigs }),
    secrets: { aid, current: [current], next: [next] },
  }
}

/**
 * The rotation of a keystore's AID from its current key state to its
 * committed next keys, committing to fresh next keys: the signed event
 * (CESR text) and the keystore secrets after it.
 */
export function rotateApprover(
  secrets: KeystoreSecrets,
  state: KeyState,
  random: Random
): { rotation: string; secrets: KeystoreSecrets } {
  const current = secrets.next
  const next = [random(32)]
  const event = makeRotation(state, {
    keys: current.map((raw) => signer(raw).verfer.qb64),
    nextDigests: next.map((raw) => nextKeyDigest(signer(raw).verfer.qb64)),
  })
  const sigs = signIndexed(serialize(event).raw, current.map(signer))
  return {
    rotation: encodeMessage({ event, sigs }),
    secrets: { aid: secrets.aid, current, next },
  }
}

function establishment(state: KeyState): SigningEstablishment {
  return { aid: state.aid, sn: state.sn, said: state.lastSaid }
}

/** A role credential signed with the authority keystore's current keys. */
export function issueCredential(
  secrets: KeystoreSecrets,
  state: KeyState,
  input: { subject: string; role: string; dt: string }
): SignedCredential {
  return issueRoleCredential({
    issuer: establishment(state),
    signers: keystoreSigners(secrets).current,
    ...input,
  })
}

/** A revocation of `credential` signed with the authority keystore's current keys. */
export function revokeCredential(
  secrets: KeystoreSecrets,
  state: KeyState,
  credential: RoleCredential,
  dt: string
): SignedRevocation {
  return revokeRoleCredential({
    credential,
    issuer: establishment(state),
    signers: keystoreSigners(secrets).current,
    dt,
  })
}
