/*
|--------------------------------------------------------------------------
| Key state
|--------------------------------------------------------------------------
|
| The key state of an AID is what its key event log (KEL) proves: the
| current signing keys and threshold, the committed next-key digests, and
| every establishment event so far (so a signature made under an earlier
| key set can be checked against the keys of its time). Plain data and
| lookups: key_events.ts verifies events and replays a KEL into it.
|
*/

/** One establishment event (inception or rotation) as it shaped the key state. */
export type Establishment = {
  /** Sequence number of the event. */
  sn: number
  /** SAID of the event. */
  said: string
  /** Signing keys (qb64 Verfer) the event established. */
  keys: string[]
  /** Signing threshold (number of keys). */
  kt: number
  /** Digests of the next keys (qb64 Diger over the key's qb64). */
  nextDigests: string[]
  /** Next-key threshold. */
  nt: number
}

/** The key state of a transferable, self-addressing AID. */
export type KeyState = {
  /** The AID (the inception event's SAID). */
  aid: string
  /** Sequence number of the last accepted event. */
  sn: number
  /** Current signing keys. */
  keys: string[]
  /** Current signing threshold. */
  kt: number
  /** Committed next-key digests. */
  nextDigests: string[]
  /** Next-key threshold. */
  nt: number
  /** SAID of the last accepted event. */
  lastSaid: string
  /** Every establishment event, oldest first (the last one is current). */
  establishments: Establishment[]
}

/**
 * The establishment event with sequence number `sn` and SAID `said`, or
 * `undefined` when the key state has none.
 */
export function findEstablishment(
  state: KeyState,
  sn: number,
  said: string
): Establishment | undefined {
  return state.establishments.find((est) => est.sn === sn && est.said === said)
}

/** The current (last) establishment event of a key state. */
export function currentEstablishment(state: KeyState): Establishment {
  return state.establishments[state.establishments.length - 1]
}
