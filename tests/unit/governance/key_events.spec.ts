import { test } from '@japa/runner'
import { ready, Signer } from 'signify-ts'
import { makeInception, makeRotation } from '#app/governance/key_event_builders'
import {
  nextKeyDigest,
  replayKel,
  verifyInception,
  verifyRotation,
} from '#app/governance/key_events'
import { encodeStream, parseStream, CesrStreamError } from '#app/governance/cesr_stream'
import { saidify, serialize, type Sad } from '#app/governance/said'
import { signIndexed } from '#app/governance/signatures'
import { makeAid, rotateAid, seedSigner } from '#tests/helpers/governance'

await ready()

/*
| Known answers from keripy tests/core/test_eventing_v1.py (test_incept) and
| signify-ts test/core/eventing.test.ts ('incept should create inception
| events'): seeds, next digest, the unsigned inception (string thresholds),
| and the signed inception message (integer thresholds) with its signature.
*/
const SEED0 = new Uint8Array([
  159, 123, 168, 167, 168, 67, 57, 150, 38, 250, 177, 153, 235, 170, 32, 196, 27, 71, 17, 196, 174,
  83, 65, 82, 201, 189, 4, 157, 133, 41, 126, 147,
])
const SEED1 = new Uint8Array([
  131, 66, 126, 4, 148, 227, 206, 85, 81, 121, 17, 102, 12, 147, 93, 30, 191, 172, 81, 181, 214, 89,
  94, 162, 69, 250, 1, 53, 152, 89, 221, 232,
])
const KAT_NEXT_DIGEST = 'EIf-ENw7PrM52w4H-S7NGU2qVIfraXVIlV9hEAaMHg7W'
const KAT_ICP_RAW =
  '{"v":"KERI10JSON00012b_","t":"icp","d":"EAKCxMOuoRzREVHsHCkLilBrUXTvyenBiuM2QtV8BB0C",' +
  '"i":"EAKCxMOuoRzREVHsHCkLilBrUXTvyenBiuM2QtV8BB0C","s":"0","kt":"1",' +
  '"k":["DFs8BBx86uytIM0D2BhsE5rrqVIT8ef8mflpNceHo4XH"],"nt":"1",' +
  '"n":["EIf-ENw7PrM52w4H-S7NGU2qVIfraXVIlV9hEAaMHg7W"],"bt":"0","b":[],"c":[],"a":[]}'
const KAT_SIGNED_MESSAGE =
  '{"v":"KERI10JSON000125_","t":"icp","d":"EIflL4H4134zYoRM6ls6Q086RLC_BhfNFh5uk-WxvhsL","i"' +
  ':"EIflL4H4134zYoRM6ls6Q086RLC_BhfNFh5uk-WxvhsL","s":"0","kt":1,"k":["DFs8BBx86uytIM0D2BhsE5rrqVIT8ef8mflpNceHo4XH"],' +
  '"nt":1,"n":["EIf-ENw7PrM52w4H-S7NGU2qVIfraXVIlV9hEAaMHg7W"],"bt":0,"b":[],"c":[],"a":[]}' +
  '-AABAABB3MJGmBXxSEryNHw3YwZZLRl_6Ws4Me2WFq8PrQ6WlluSOpPqbwXuiG9RvNWZkqeW8A_0VRjokGMVRZ3m-c0I'

function expectFail(
  assert: {
    isFalse(v: boolean, m?: string): void
    equal(a: unknown, b: unknown, m?: string): void
  },
  verdict: { ok: boolean; code?: string; reason?: string },
  code: string
) {
  assert.isFalse(verdict.ok, `expected ${code}`)
  assert.equal(verdict.code, code, verdict.reason)
}

/** Re-SAIDs a modified rotation and re-signs it with `signers`. */
function resign(event: Sad, signers: Signer[], labels = ['d']) {
  const fixed = saidify({ ...event }, labels)
  return { event: fixed, sigs: signIndexed(serialize(fixed).raw, signers) }
}

test.group('governance / key events: known answers', () => {
  test('keripy/signify-ts inception: next digest, SAID/prefix and exact bytes', ({ assert }) => {
    const signer0 = new Signer({ raw: SEED0 })
    const signer1 = new Signer({ raw: SEED1 })
    assert.equal(nextKeyDigest(signer1.verfer.qb64), KAT_NEXT_DIGEST)
    const event = makeInception({ keys: [signer0.verfer.qb64], nextDigests: [KAT_NEXT_DIGEST] })
    assert.equal(new TextDecoder().decode(serialize(event).raw), KAT_ICP_RAW)
    const verdict = verifyInception(event, signIndexed(serialize(event).raw, [signer0]))
    assert.isTrue(verdict.ok)
    if (verdict.ok) assert.equal(verdict.state.aid, 'EAKCxMOuoRzREVHsHCkLilBrUXTvyenBiuM2QtV8BB0C')
  })

  test('keripy/signify-ts signed inception message parses and verifies', ({ assert }) => {
    const [entry, ...rest] = parseStream(KAT_SIGNED_MESSAGE)
    assert.lengthOf(rest, 0)
    assert.deepEqual(entry.sigs, [
      'AABB3MJGmBXxSEryNHw3YwZZLRl_6Ws4Me2WFq8PrQ6WlluSOpPqbwXuiG9RvNWZkqeW8A_0VRjokGMVRZ3m-c0I',
    ])
    const verdict = verifyInception(entry.event, entry.sigs)
    assert.isTrue(verdict.ok)
    if (!verdict.ok) return
    assert.equal(verdict.state.aid, 'EIflL4H4134zYoRM6ls6Q086RLC_BhfNFh5uk-WxvhsL')
    assert.deepEqual(verdict.state.nextDigests, [KAT_NEXT_DIGEST])
    // Our encoder reproduces the same bytes (signify-ts messagize / keripy).
    assert.equal(encodeStream([entry]), KAT_SIGNED_MESSAGE)
    // Ed25519 is deterministic: signing it again gives the known signature.
    assert.deepEqual(
      signIndexed(serialize(entry.event).raw, [new Signer({ raw: SEED0 })]),
      entry.sigs
    )
  })
})

/*
| keripy tests/core/test_eventing_v1.py (test_keyeventfuncs): an inception
| with a BASIC prefix (i = the key, d = its SAID) and the rotation that
| follows it, to the key committed as EIf-ENw7… (signer of SEED1).
*/
const KERIPY_BASIC_ICP_RAW =
  '{"v":"KERI10JSON00012b_","t":"icp","d":"EJQUyxnzIAtmZPoq9f4fExeGN0qfJmaFnUEKTwIiTBPj",' +
  '"i":"DFs8BBx86uytIM0D2BhsE5rrqVIT8ef8mflpNceHo4XH","s":"0","kt":"1",' +
  '"k":["DFs8BBx86uytIM0D2BhsE5rrqVIT8ef8mflpNceHo4XH"],"nt":"1",' +
  '"n":["EIf-ENw7PrM52w4H-S7NGU2qVIfraXVIlV9hEAaMHg7W"],"bt":"0","b":[],"c":[],"a":[]}'
const KERIPY_ROT_RAW =
  '{"v":"KERI10JSON000160_","t":"rot","d":"EFl8nvRCbN2xQJI75nBXp-gaXuHJw8zheVjwMN_rB-pb",' +
  '"i":"DFs8BBx86uytIM0D2BhsE5rrqVIT8ef8mflpNceHo4XH","s":"1",' +
  '"p":"EJQUyxnzIAtmZPoq9f4fExeGN0qfJmaFnUEKTwIiTBPj","kt":"1",' +
  '"k":["DB4GWvru73jWZKpNgMQp8ayDRin0NG0Ymn_RXQP_v-PQ"],"nt":"1",' +
  '"n":["EIsKL3B6Zz5ICGxCQp-SoLXjwOrdlSbLJrEn21c2zVaU"],"bt":"0","br":[],"ba":[],"a":[]}'

test.group('governance / key events: keripy rotation known answer', () => {
  test('keripy rotation: same bytes from makeRotation; pre-rotation and SAID checks accept it', ({
    assert,
  }) => {
    const signer1 = new Signer({ raw: SEED1 })
    const icp = JSON.parse(KERIPY_BASIC_ICP_RAW) as Sad
    const rot = JSON.parse(KERIPY_ROT_RAW) as Sad
    const prior = {
      aid: icp.i as string,
      sn: 0,
      keys: icp.k as string[],
      kt: 1,
      nextDigests: icp.n as string[],
      nt: 1,
      lastSaid: icp.d as string,
      establishments: [],
    }
    const built = makeRotation(prior, {
      keys: [signer1.verfer.qb64],
      nextDigests: rot.n as string[],
    })
    assert.equal(new TextDecoder().decode(serialize(built).raw), KERIPY_ROT_RAW)
    const verdict = verifyRotation(prior, rot, signIndexed(serialize(rot).raw, [signer1]))
    assert.isTrue(verdict.ok)
    if (verdict.ok) assert.deepEqual(verdict.state.keys, [signer1.verfer.qb64])
    // Signed by the pre-rotation key instead: refused.
    const old = signIndexed(serialize(rot).raw, [new Signer({ raw: SEED0 })])
    assert.equal(verifyRotation(prior, rot, old).ok, false)
    // keripy's inception itself has a basic prefix: not a self-addressing AID.
    const basic = verifyInception(
      icp,
      signIndexed(serialize(icp).raw, [new Signer({ raw: SEED0 })])
    )
    expectFail(assert, basic, 'E_SAID_INVALID')
  })
})

test.group('governance / key events: inception', () => {
  test('wrong SAID, wrong prefix, bad or missing signature are refused', ({ assert }) => {
    const aid = makeAid(1, 2)
    const { event, sigs } = aid.kel[0]
    const other = seedSigner(9)
    expectFail(
      assert,
      verifyInception({ ...event, d: 'E' + 'A'.repeat(43) }, sigs),
      'E_SAID_INVALID'
    )
    // A SAID computed without the prefix as placeholder: i != d.
    const dOnly = saidify({ ...event, i: 'E' + 'B'.repeat(43) }, ['d'])
    expectFail(
      assert,
      verifyInception(dOnly, signIndexed(serialize(dOnly).raw, aid.current)),
      'E_SAID_INVALID'
    )
    expectFail(
      assert,
      verifyInception(event, signIndexed(serialize(event).raw, [other])),
      'E_SIGNATURE_INVALID'
    )
    expectFail(assert, verifyInception(event, []), 'E_SIGNATURE_INVALID')
    const flipped = sigs[0].slice(0, 10) + (sigs[0][10] === 'A' ? 'B' : 'A') + sigs[0].slice(11)
    expectFail(assert, verifyInception(event, [flipped]), 'E_SIGNATURE_INVALID')
    expectFail(assert, verifyInception(event, [sigs[0], sigs[0]]), 'E_SIGNATURE_INVALID')
    expectFail(assert, verifyInception(event, ['not-a-signature']), 'E_SIGNATURE_INVALID')
  })

  test('non-transferable, abandoned, witnessed or reordered events are refused', ({ assert }) => {
    const signer = seedSigner(1)
    const keys = [signer.verfer.qb64]
    const next = [nextKeyDigest(seedSigner(2).verfer.qb64)]
    const base = makeInception({ keys, nextDigests: next })
    const cases: Array<[Sad, string]> = [
      [{ ...base, n: [], nt: '0' }, 'E_KEY_EVENT_INVALID'],
      [
        { ...base, k: [new Signer({ raw: signer.raw, transferable: false }).verfer.qb64] },
        'E_KEY_EVENT_INVALID',
      ],
      [{ ...base, b: [keys[0]], bt: '1' }, 'E_KEY_EVENT_INVALID'],
      [{ ...base, kt: '2' }, 'E_KEY_EVENT_INVALID'],
      [{ ...base, kt: [['1/2', '1/2']] }, 'E_KEY_EVENT_INVALID'],
      [{ ...base, s: '1' }, 'E_KEY_EVENT_INVALID'],
      [{ ...base, t: 'rot' }, 'E_KEY_EVENT_INVALID'],
    ]
    for (const [event, code] of cases) {
      const { event: fixed, sigs } = resign(event, [signer], ['i', 'd'])
      expectFail(assert, verifyInception(fixed, sigs), code)
    }
    const { t, v, ...rest } = base
    const reordered = resign({ t, v, ...rest }, [signer], ['i', 'd'])
    expectFail(assert, verifyInception(reordered.event, reordered.sigs), 'E_KEY_EVENT_INVALID')
  })
})

test.group('governance / key events: rotation and replay', () => {
  test('rotation to the committed keys verifies; replay gives the current key state', ({
    assert,
  }) => {
    const aid0 = makeAid(1, 2)
    const aid2 = rotateAid(rotateAid(aid0, 3), 4)
    const replayed = replayKel(aid2.kel)
    assert.isTrue(replayed.ok)
    if (!replayed.ok) return
    const { state } = replayed
    assert.equal(state.aid, aid0.state.aid)
    assert.equal(state.sn, 2)
    assert.deepEqual(state.keys, [seedSigner(3).verfer.qb64])
    assert.deepEqual(state.nextDigests, [nextKeyDigest(seedSigner(4).verfer.qb64)])
    assert.equal(state.lastSaid, aid2.kel[2].event.d)
    assert.deepEqual(
      state.establishments.map((e) => [e.sn, e.said]),
      aid2.kel.map((e, n) => [n, e.event.d])
    )
    // The KEL survives a CESR stream round trip.
    assert.deepEqual(parseStream(encodeStream(aid2.kel)), aid2.kel)
  })

  test('uncommitted keys, old keys, out-of-order sn and wrong p are refused', ({ assert }) => {
    const aid = makeAid(1, 2)
    const good = makeRotation(aid.state, {
      keys: aid.next.map((s) => s.verfer.qb64),
      nextDigests: [nextKeyDigest(seedSigner(3).verfer.qb64)],
    })
    const goodSigs = signIndexed(serialize(good).raw, aid.next)
    assert.isTrue(verifyRotation(aid.state, good, goodSigs).ok)

    // Keys that were not pre-committed (an attacker holding the current key).
    const rogue = seedSigner(7)
    const uncommitted = resign({ ...good, k: [rogue.verfer.qb64] }, [rogue])
    expectFail(
      assert,
      verifyRotation(aid.state, uncommitted.event, uncommitted.sigs),
      'E_KEY_EVENT_INVALID'
    )
    // Signed by the OLD (current) key instead of the new one.
    expectFail(
      assert,
      verifyRotation(aid.state, good, signIndexed(serialize(good).raw, aid.current)),
      'E_SIGNATURE_INVALID'
    )
    // Out of order: skips a sequence number; replays sn 0.
    const skip = resign({ ...good, s: '2' }, aid.next)
    expectFail(assert, verifyRotation(aid.state, skip.event, skip.sigs), 'E_KEY_EVENT_INVALID')
    const zero = resign({ ...good, s: '0' }, aid.next)
    expectFail(assert, verifyRotation(aid.state, zero.event, zero.sigs), 'E_KEY_EVENT_INVALID')
    // Wrong prior event digest.
    const wrongP = resign({ ...good, p: 'E' + 'C'.repeat(43) }, aid.next)
    expectFail(assert, verifyRotation(aid.state, wrongP.event, wrongP.sigs), 'E_KEY_EVENT_INVALID')
    // Another AID's rotation.
    const other = makeAid(5, 6)
    expectFail(assert, verifyRotation(other.state, good, goodSigs), 'E_KEY_EVENT_INVALID')
    // Tampered after signing: SAID no longer matches.
    expectFail(
      assert,
      verifyRotation(aid.state, { ...good, n: [nextKeyDigest(rogue.verfer.qb64)] }, goodSigs),
      'E_SAID_INVALID'
    )
  })

  test('replay names the first bad event; interaction events are refused', ({ assert }) => {
    const aid = rotateAid(rotateAid(makeAid(1, 2), 3), 4)
    const swapped = [aid.kel[0], aid.kel[2], aid.kel[1]]
    const verdict = replayKel(swapped)
    assert.isFalse(verdict.ok)
    if (!verdict.ok) assert.match(verdict.reason, /^event 1: out of order/)
    const dropped = replayKel([aid.kel[0], aid.kel[2]])
    assert.isFalse(dropped.ok)
    assert.isFalse(replayKel([]).ok)
    const ixn = resign(
      {
        v: 'KERI10JSON000000_',
        t: 'ixn',
        d: '',
        i: aid.state.aid,
        s: '3',
        p: aid.state.lastSaid,
        a: [],
      },
      aid.current
    )
    const withIxn = replayKel([...aid.kel, ixn])
    assert.isFalse(withIxn.ok)
    if (!withIxn.ok) assert.equal(withIxn.code, 'E_KEY_EVENT_INVALID')
  })

  test('malformed streams are refused with CesrStreamError', ({ assert }) => {
    const aid = makeAid(1, 2)
    const text = encodeStream(aid.kel)
    assert.throws(() => parseStream(text.slice(0, -5)), CesrStreamError)
    assert.throws(() => parseStream(text.replace('-AAB', '-BAB')), CesrStreamError)
    assert.throws(() => parseStream('{"x":1}'), CesrStreamError)
    assert.throws(() => parseStream(text + 'garbage'), CesrStreamError)
  })
})
