/*
|--------------------------------------------------------------------------
| KERI key events: inception, rotation, key event log replay
|--------------------------------------------------------------------------
|
| Approvers, the role authority and the service are transferable,
| self-addressing AIDs: the AID is the SAID of the inception event (`i` ==
| `d`), the keys are Ed25519 (`D…`), and every establishment event commits
| to the digests of the next keys (`n`, pre-rotation). No witnesses, no
| delegation, no interaction events: those are refused.
|
| signify-ts builds the events (`incept`, `rotate`, in
| app/governance/key_event_builders.ts); the checks are written here because
| its `Prefixer.verify` tests the wrong field in 0.3.0 and it has no event
| validator. The key state they establish (and its lookups) is in
| key_state.ts.
|
*/
import { Diger, b } from './signify.js'
import { deriveSaid, parseVersion, serialize, verifySaid, SAID_RE, type Sad } from './said.js'
import { parseSig, parseThreshold, verifyIndexed } from './signatures.js'
import { fail, type Verdict } from './verdict.js'
import type { Establishment, KeyState } from './key_state.js'

/** A key event with its controller's indexed signatures (qb64 Siger). */
export type KelEntry = { event: Sad; sigs: string[] }

const ICP_FIELDS = ['v', 't', 'd', 'i', 's', 'kt', 'k', 'nt', 'n', 'bt', 'b', 'c', 'a']
const ROT_FIELDS = ['v', 't', 'd', 'i', 's', 'p', 'kt', 'k', 'nt', 'n', 'bt', 'br', 'ba', 'a']
const KEY_RE = /^D[A-Za-z0-9_-]{43}$/

/** The next-key digest KERI commits to: Blake3-256 of the key's qb64 text. */
export function nextKeyDigest(key: string): string {
  return new Diger({}, b(key)).qb64
}

function parseSn(value: unknown): number | undefined {
  return typeof value === 'string' ? parseThreshold(value) : undefined
}

/** Checks the fields shared by icp and rot; returns the establishment data. */
function checkEstablishment(
  event: Sad,
  ilk: 'icp' | 'rot',
  fields: string[]
): Verdict<{ est: Omit<Establishment, 'sn'> & { sn: number } }> {
  const keys = Object.keys(event)
  if (keys.length !== fields.length || keys.some((key, n) => key !== fields[n])) {
    return fail('E_KEY_EVENT_INVALID', `${ilk} fields must be ${fields.join(',')} in that order`)
  }
  const version = parseVersion(event.v)
  if (event.t !== ilk || version?.protocol !== 'KERI') {
    return fail('E_KEY_EVENT_INVALID', `not a KERI v1 JSON ${ilk} event`)
  }
  const sn = parseSn(event.s)
  if (sn === undefined) return fail('E_KEY_EVENT_INVALID', 'bad sequence number')
  const k = event.k
  const n = event.n
  if (
    !Array.isArray(k) ||
    k.length === 0 ||
    !k.every((key) => typeof key === 'string' && KEY_RE.test(key))
  ) {
    return fail('E_KEY_EVENT_INVALID', 'k must be transferable Ed25519 keys (D…)')
  }
  if (new Set(k).size !== k.length) return fail('E_KEY_EVENT_INVALID', 'k has a key twice')
  if (
    !Array.isArray(n) ||
    n.length === 0 ||
    !n.every((dig) => typeof dig === 'string' && SAID_RE.test(dig))
  ) {
    return fail(
      'E_KEY_EVENT_INVALID',
      'n must commit to next keys (Blake3 digests); empty n abandons the AID'
    )
  }
  const kt = parseThreshold(event.kt)
  const nt = parseThreshold(event.nt)
  if (kt === undefined || kt < 1 || kt > k.length) return fail('E_KEY_EVENT_INVALID', 'bad kt')
  if (nt === undefined || nt < 1 || nt > n.length) return fail('E_KEY_EVENT_INVALID', 'bad nt')
  const noWitnesses =
    parseThreshold(event.bt) === 0 &&
    (ilk === 'icp'
      ? Array.isArray(event.b) &&
        event.b.length === 0 &&
        Array.isArray(event.c) &&
        event.c.length === 0
      : Array.isArray(event.br) &&
        event.br.length === 0 &&
        Array.isArray(event.ba) &&
        event.ba.length === 0)
  if (!noWitnesses)
    return fail('E_KEY_EVENT_INVALID', 'witnesses and config traits are not supported')
  if (!Array.isArray(event.a) || event.a.length !== 0) {
    return fail('E_KEY_EVENT_INVALID', 'anchored seals are not supported')
  }
  const labels = ilk === 'icp' ? ['i', 'd'] : ['d']
  if (!verifySaid(event, labels)) {
    return fail('E_SAID_INVALID', `${ilk} SAID does not match its content`)
  }
  const said = event.d as string
  return {
    ok: true,
    est: { sn, said, keys: k as string[], kt, nextDigests: n as string[], nt },
  }
}

/**
 * Verifies an inception event and its self-signatures: KERI v1 JSON `icp`,
 * `s` = 0, `i` == `d` == the event's SAID (computed with both as
 * placeholder), transferable Ed25519 keys, a non-empty next-key commitment,
 * numeric thresholds, no witnesses, and indexed signatures by the event's
 * own keys meeting `kt`. Returns the key state it establishes.
 */
export function verifyInception(
  event: Sad,
  sigs: readonly unknown[]
): Verdict<{ state: KeyState }> {
  const checked = checkEstablishment(event, 'icp', ICP_FIELDS)
  if (!checked.ok) return checked
  const { est } = checked
  if (est.sn !== 0) return fail('E_KEY_EVENT_INVALID', 'inception must have s = 0')
  if (event.i !== est.said) return fail('E_KEY_EVENT_INVALID', 'prefix i is not the SAID d')
  const signed = verifyIndexed(serialize(event).raw, sigs, est.keys, est.kt)
  if (!signed.ok) return signed
  const state: KeyState = {
    aid: est.said,
    sn: 0,
    keys: est.keys,
    kt: est.kt,
    nextDigests: est.nextDigests,
    nt: est.nt,
    lastSaid: est.said,
    establishments: [est],
  }
  return { ok: true, state }
}

/**
 * Verifies a rotation event against the prior key state: same AID, `s` =
 * prior sn + 1, `p` = the prior event's SAID, a valid SAID, every new key's
 * digest among the prior committed next digests (pre-rotation), and
 * indexed signatures by the NEW keys meeting the new `kt` while the prior
 * next keys they expose (their `ondex`) meet the prior `nt`. Returns the new
 * key state.
 */
export function verifyRotation(
  prior: KeyState,
  event: Sad,
  sigs: readonly unknown[]
): Verdict<{ state: KeyState }> {
  const checked = checkEstablishment(event, 'rot', ROT_FIELDS)
  if (!checked.ok) return checked
  const { est } = checked
  if (event.i !== prior.aid) return fail('E_KEY_EVENT_INVALID', 'rotation is for another AID')
  if (est.sn !== prior.sn + 1) {
    return fail('E_KEY_EVENT_INVALID', `out of order: s = ${est.sn}, expected ${prior.sn + 1}`)
  }
  if (event.p !== prior.lastSaid) {
    return fail('E_KEY_EVENT_INVALID', 'p is not the SAID of the prior event')
  }
  const committed = est.keys.map((key) => prior.nextDigests.indexOf(nextKeyDigest(key)))
  if (committed.some((position) => position < 0)) {
    return fail('E_KEY_EVENT_INVALID', 'new keys do not match the committed next-key digests')
  }
  const raw = serialize(event).raw
  const signed = verifyIndexed(raw, sigs, est.keys, est.kt)
  if (!signed.ok) return signed
  // Prior-next threshold: each signature's ondex names the prior next digest
  // its key was committed as.
  const exposed = new Set<number>()
  for (const sig of sigs.map(parseSig)) {
    if (!sig || sig.ondex === undefined) continue
    if (committed[sig.index] === sig.ondex) exposed.add(sig.ondex)
  }
  if (exposed.size < prior.nt) {
    return fail(
      'E_SIGNATURE_INVALID',
      `prior next threshold ${prior.nt} not met by the exposed keys`
    )
  }
  const state: KeyState = {
    aid: prior.aid,
    sn: est.sn,
    keys: est.keys,
    kt: est.kt,
    nextDigests: est.nextDigests,
    nt: est.nt,
    lastSaid: est.said,
    establishments: [...prior.establishments, est],
  }
  return { ok: true, state }
}

/** The SAID an inception event must carry in both `i` and `d`. */
export function inceptionSaid(event: Sad): string {
  return deriveSaid(event, ['i', 'd'])
}

/**
 * Replays a key event log (inception first, then rotations in order) and
 * returns the resulting key state, or the first event that does not verify
 * (`reason` names its sequence number).
 */
export function replayKel(entries: readonly KelEntry[]): Verdict<{ state: KeyState }> {
  if (entries.length === 0) return fail('E_KEY_EVENT_INVALID', 'empty key event log')
  const first = verifyInception(entries[0].event, entries[0].sigs)
  if (!first.ok) return { ...first, reason: `event 0: ${first.reason}` }
  let state = first.state
  for (let index = 1; index < entries.length; index++) {
    const next = verifyRotation(state, entries[index].event, entries[index].sigs)
    if (!next.ok) return { ...next, reason: `event ${index}: ${next.reason}` }
    state = next.state
  }
  return { ok: true, state }
}
