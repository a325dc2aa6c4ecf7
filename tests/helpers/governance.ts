import { Signer } from 'signify-ts'
import { makeInception, makeRotation } from '#app/governance/key_event_builders'
import { nextKeyDigest, replayKel, type KelEntry } from '#app/governance/key_events'
import type { KeyState } from '#app/governance/key_state'
import { serialize } from '#app/governance/said'
import { signIndexed, type SigningEstablishment } from '#app/governance/signatures'

/** A deterministic Ed25519 seed signer: 32 bytes of `fill`. */
export function seedSigner(fill: number): Signer {
  return new Signer({ raw: new Uint8Array(32).fill(fill), transferable: true })
}

/** A test controller: its KEL, key state and the signers of its current and next keys. */
export type TestAid = {
  kel: KelEntry[]
  state: KeyState
  current: Signer[]
  next: Signer[]
  est: SigningEstablishment
}

function ok(kel: KelEntry[]): KeyState {
  const replayed = replayKel(kel)
  if (!replayed.ok) throw new Error(replayed.reason)
  return replayed.state
}

function establishment(state: KeyState): SigningEstablishment {
  return { aid: state.aid, sn: state.sn, said: state.lastSaid }
}

/** Incepts a one-key AID from seed fills `cur` and `nxt`. */
export function makeAid(cur: number, nxt: number): TestAid {
  const current = [seedSigner(cur)]
  const next = [seedSigner(nxt)]
  const event = makeInception({
    keys: current.map((s) => s.verfer.qb64),
    nextDigests: next.map((s) => nextKeyDigest(s.verfer.qb64)),
  })
  const kel = [{ event, sigs: signIndexed(serialize(event).raw, current) }]
  const state = ok(kel)
  return { kel, state, current, next, est: establishment(state) }
}

/** Rotates a test AID to its committed next key, committing to seed fill `nxt`. */
export function rotateAid(aid: TestAid, nxt: number): TestAid {
  const current = aid.next
  const next = [seedSigner(nxt)]
  const event = makeRotation(aid.state, {
    keys: current.map((s) => s.verfer.qb64),
    nextDigests: next.map((s) => nextKeyDigest(s.verfer.qb64)),
  })
  const kel = [...aid.kel, { event, sigs: signIndexed(serialize(event).raw, current) }]
  const state = ok(kel)
  return { kel, state, current, next, est: establishment(state) }
}
