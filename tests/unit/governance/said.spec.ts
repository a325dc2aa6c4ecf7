import { test } from '@japa/runner'
import { ready, Saider } from 'signify-ts'
import {
  deriveSaid,
  parseVersion,
  saidify,
  serialize,
  verifySaid,
  SadShapeError,
} from '#app/governance/said'

await ready()

/*
| Known answer from keripy tests/core/test_coring.py (test_saider, `sad4`),
| repeated in signify-ts test/core/saider.test.ts: a versioned `rep`
| document with an empty `d`.
*/
const KERIPY_SAD4 = {
  v: 'KERI10JSON000000_',
  t: 'rep',
  d: '',
  dt: '2020-08-22T17:50:12.988921+00:00',
  r: 'logs/processor',
  a: {
    d: 'EBabiu_JCkE0GbiglDXNB5C4NQq-hiGgxhHKXBxkiojg',
    i: 'EB0_D51cTh_q6uOQ-byFiv5oNXZ-cxdqCqBAa4JmBLtb',
    name: 'John Jones',
    role: 'Founder',
  },
}
const KERIPY_SAD4_SAID = 'ELzewBpZHSENRP-sL_G_2Ji4YDdNkns9AzFzufleJqdw'

test.group('governance / SAIDs', () => {
  test('known answer: keripy/signify-ts sad4 SAID and sized version string', ({ assert }) => {
    assert.equal(deriveSaid(KERIPY_SAD4), KERIPY_SAD4_SAID)
    const done = saidify(KERIPY_SAD4)
    assert.equal(done.d, KERIPY_SAD4_SAID)
    assert.equal(done.v, 'KERI10JSON000124_')
    assert.equal(serialize(done).raw.length, 0x124)
    assert.isTrue(verifySaid(done))
    assert.equal(KERIPY_SAD4.d, '', 'input not changed')
  })

  test('matches signify-ts Saider.saidify on unversioned and versioned documents', ({ assert }) => {
    const docs = [
      { d: '', a: 1, b: ['x', { c: null }], é: 'ünïcode' },
      {
        v: 'ACDC10JSON000000_',
        d: '',
        i: 'EB0_D51cTh_q6uOQ-byFiv5oNXZ-cxdqCqBAa4JmBLtb',
        a: { x: true },
      },
    ]
    for (const doc of docs) {
      const [saider, sad] = Saider.saidify(structuredClone(doc))
      assert.equal(deriveSaid(doc), saider.qb64)
      assert.deepEqual(saidify(doc), sad)
    }
  })

  test('$id label (JSON schema SAIDs, keripy Schemer)', ({ assert }) => {
    const schema = { $id: '', $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' }
    const [saider] = Saider.saidify(structuredClone(schema), 'E', 'JSON' as never, '$id')
    assert.equal(deriveSaid(schema, ['$id']), saider.qb64)
    assert.isTrue(verifySaid(saidify(schema, ['$id']), ['$id']))
  })

  test('any change to content, SAID or size is detected', ({ assert }) => {
    const done = saidify(KERIPY_SAD4)
    assert.isFalse(verifySaid({ ...done, r: 'logs/processor2' }))
    assert.isFalse(verifySaid({ ...done, a: { ...done.a, role: 'Clerk' } }))
    assert.isFalse(verifySaid({ ...done, d: 'E' + 'A'.repeat(43) }))
    assert.isFalse(verifySaid({ ...done, v: 'KERI10JSON000125_' }), 'wrong size in v')
    const noD: Record<string, unknown> = { ...done }
    delete noD.d
    assert.isFalse(verifySaid(noD))
    // Reordering keys changes the bytes, hence the SAID.
    const { v, t, d, ...rest } = done
    assert.isFalse(verifySaid({ t, v, d, ...rest }))
  })

  test('refuses data that would not survive a JSON round trip unchanged', ({ assert }) => {
    assert.throws(() => deriveSaid({ d: '', params: { '1': 'x' } }), SadShapeError)
    assert.throws(() => deriveSaid({ d: '', x: undefined }), SadShapeError)
    assert.throws(() => deriveSaid({ d: '', x: Number.NaN }), SadShapeError)
    assert.throws(() => deriveSaid({ d: '', x: new Date(0) }), SadShapeError)
    assert.throws(() => deriveSaid({ a: 1 }), SadShapeError)
    assert.isFalse(verifySaid({ d: '', x: undefined }))
  })

  test('version strings', ({ assert }) => {
    assert.deepEqual(parseVersion('ACDC10JSON00012b_'), { protocol: 'ACDC', size: 0x12b })
    assert.isUndefined(parseVersion('KERI20JSON00012b_'))
    assert.isUndefined(parseVersion('KERI10CBOR00012b_'))
  })
})
