/*
|--------------------------------------------------------------------------
| KERI key events: building inception and rotation events
|--------------------------------------------------------------------------
|
| signify-ts `incept` and `rotate` build the events that
| app/governance/key_events.ts checks. They are the only users of
| signify-ts' barrel (its thresholds, `Tholder`, load all of mathjs): the
| service imports this module when it makes a key event (first audit record,
| `audit:rotate-key`), the approver commands when they make theirs.
|
*/
import { incept, rotate, MtrDex } from 'signify-ts'
import type { Sad } from './said.js'
import type { KeyState } from './key_state.js'

/**
 * A signed-to-be inception event for a transferable, self-addressing AID
 * (`i` == `d`), built by signify-ts `incept`.
 */
export function makeInception(input: {
  keys: string[]
  nextDigests: string[]
  kt?: number
  nt?: number
}): Sad {
  return incept({
    keys: input.keys,
    ndigs: input.nextDigests,
    isith: (input.kt ?? 1).toString(16),
    nsith: (input.nt ?? 1).toString(16),
    code: MtrDex.Blake3_256,
  }).sad as Sad
}

/**
 * A rotation event following `state`: sn + 1, `p` = the last event's SAID,
 * the new keys (which must be the committed next keys) and the new next
 * digests; built by signify-ts `rotate`.
 */
export function makeRotation(
  state: KeyState,
  input: { keys: string[]; nextDigests: string[]; kt?: number; nt?: number }
): Sad {
  return rotate({
    pre: state.aid,
    keys: input.keys,
    dig: state.lastSaid,
    sn: state.sn + 1,
    isith: (input.kt ?? 1).toString(16),
    ndigs: input.nextDigests,
    nsith: (input.nt ?? 1).toString(16),
  }).sad as Sad
}
