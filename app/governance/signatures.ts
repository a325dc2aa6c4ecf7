/*
|--------------------------------------------------------------------------
| Indexed signatures and signature groups
|--------------------------------------------------------------------------
|
| Signatures are CESR indexed Ed25519 signatures (signify-ts `Siger`,
| qb64): the index names the signing key's position in the key list of the
| establishment event in force. A signature group is KERI's transferable
| indexed signature group (`-F` attachment: AID, establishment sn and SAID,
| signatures) in JSON form, so a verifier picks the keys of that event.
|
*/
import { Siger, Verfer, IdrDex, type Signer } from './signify.js'
import { fail, type Verdict } from './verdict.js'
import { currentEstablishment, findEstablishment, type KeyState } from './key_state.js'

/** KERI transferable indexed signature group, JSON form (`-F`: i, s, d, sigs). */
export type SignatureGroup = {
  /** Signer's AID. */
  i: string
  /** Sequence number (hex) of the establishment event whose keys signed. */
  s: string
  /** SAID of that establishment event. */
  d: string
  /** Indexed signatures (qb64 Siger). */
  sigs: string[]
}

/** Which establishment event a signer signs under. */
export type SigningEstablishment = { aid: string; sn: number; said: string }

const ED25519_INDEXED = new Set([IdrDex.Ed25519_Sig, IdrDex.Ed25519_Big_Sig])

/**
 * Parses a threshold (`kt`/`nt`): a hex string (`"1"`, `"a"`) or a
 * non-negative integer. Weighted thresholds are not supported (`undefined`).
 */
export function parseThreshold(value: unknown): number | undefined {
  if (typeof value === 'number')
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  if (typeof value === 'string' && /^(0|[1-9a-f][0-9a-f]{0,7})$/.test(value)) {
    return Number.parseInt(value, 16)
  }
  return undefined
}

/**
 * Signs `raw` with each signer; signer n gets index n (its key's position
 * in the establishment event's key list). Returns qb64 Sigers.
 */
export function signIndexed(raw: Uint8Array, signers: readonly Signer[]): string[] {
  return signers.map((signer, index) => signer.sign(raw, index).qb64)
}

/** A parsed indexed signature. */
export type ParsedSig = { index: number; ondex: number | undefined; raw: Uint8Array }

/** Parses a qb64 indexed Ed25519 signature; `undefined` when it is not one. */
export function parseSig(qb64: unknown): ParsedSig | undefined {
  if (typeof qb64 !== 'string') return undefined
  try {
    const siger = new Siger({ qb64 })
    if (!ED25519_INDEXED.has(siger.code) || siger.qb64 !== qb64) return undefined
    return { index: siger.index, ondex: siger.ondex, raw: siger.raw }
  } catch {
    return undefined
  }
}

/** True when `sig` is a valid Ed25519 signature of `raw` by the qb64 key `key`. */
export function verifyWithKey(key: string, sig: Uint8Array, raw: Uint8Array): boolean {
  try {
    return new Verfer({ qb64: key }).verify(sig, raw)
  } catch {
    return false
  }
}

/**
 * Verifies indexed signatures of `raw` against `keys` and requires at least
 * `kt` distinct valid signers. Any invalid, malformed, out-of-range or
 * repeated signature fails the whole set. Returns the signing indexes.
 */
export function verifyIndexed(
  raw: Uint8Array,
  sigs: readonly unknown[],
  keys: readonly string[],
  kt: number
): Verdict<{ indices: number[]; parsed: ParsedSig[] }> {
  const seen = new Set<number>()
  const parsed: ParsedSig[] = []
  for (const [n, qb64] of sigs.entries()) {
    const sig = parseSig(qb64)
    if (!sig)
      return fail('E_SIGNATURE_INVALID', `signature ${n} is not an indexed Ed25519 signature`)
    if (sig.index >= keys.length)
      return fail('E_SIGNATURE_INVALID', `signature ${n}: no key ${sig.index}`)
    if (seen.has(sig.index))
      return fail('E_SIGNATURE_INVALID', `signature ${n}: key ${sig.index} twice`)
    if (!verifyWithKey(keys[sig.index], sig.raw, raw)) {
      return fail('E_SIGNATURE_INVALID', `signature ${n} does not verify with key ${sig.index}`)
    }
    seen.add(sig.index)
    parsed.push(sig)
  }
  if (kt < 1 || seen.size < kt) {
    return fail('E_SIGNATURE_INVALID', `${seen.size} valid signature(s), threshold ${kt}`)
  }
  return { ok: true, indices: [...seen], parsed }
}

/** Signs `raw` as a signature group under the given establishment event. */
export function signGroup(
  raw: Uint8Array,
  signers: readonly Signer[],
  est: SigningEstablishment
): SignatureGroup {
  return { i: est.aid, s: est.sn.toString(16), d: est.said, sigs: signIndexed(raw, signers) }
}

/**
 * Verifies a signature group over `raw` against the signer's key state: the
 * group's establishment event must be in the KEL (and, with
 * `requireCurrent`, be the current one: a rotated-out key is refused), and
 * its signatures must meet that event's threshold.
 */
export function verifyGroup(
  raw: Uint8Array,
  group: SignatureGroup,
  state: KeyState,
  options: { requireCurrent: boolean }
): Verdict<{ sn: number }> {
  if (!group || typeof group !== 'object' || group.i !== state.aid) {
    return fail('E_SIGNATURE_INVALID', `signature group is not by ${state.aid}`)
  }
  const sn = parseThreshold(group.s)
  const est = sn === undefined ? undefined : findEstablishment(state, sn, group.d)
  if (!est) {
    return fail(
      'E_SIGNATURE_INVALID',
      `${state.aid} has no establishment event ${group.s}/${group.d}`
    )
  }
  if (options.requireCurrent && est !== currentEstablishment(state)) {
    return fail(
      'E_SIGNATURE_INVALID',
      `${state.aid} signed with rotated-out keys (event ${group.s})`
    )
  }
  if (!Array.isArray(group.sigs)) return fail('E_SIGNATURE_INVALID', 'signature group has no sigs')
  const verdict = verifyIndexed(raw, group.sigs, est.keys, est.kt)
  return verdict.ok ? { ok: true, sn: est.sn } : verdict
}
