import { crc32 } from 'node:zlib'
import { test } from '@japa/runner'
import { bearerTokenOf, parseAccessToken } from '#services/access_token_grammar'
import { canonicalBigintId } from '#validators/id'
import { assertJsonDepth, assertJsonMediaType } from '#app/http/json_body'

const b64 = (text: string) => Buffer.from(text).toString('base64url')
const seed = 'A'.repeat(20) + 'b_-9'.repeat(5)
const secret = `${seed}${crc32(seed)}`

test.group('access token grammar', () => {
  test('a token of the issued shape is split into id and secret', ({ assert }) => {
    assert.deepEqual(parseAccessToken(`rwp_${b64('42')}.${b64(secret)}`), { id: '42', secret })
    assert.deepEqual(parseAccessToken(`rwp_${b64('2147483647')}.${b64(secret)}`)?.id, '2147483647')
  })

  test('anything else is not a token (no query is made for it)', ({ assert }) => {
    const bad = [
      'rwp_YWJj.c2VjcmV0',
      ...['abc', '1.5', '123456789012345678901', "' OR 1=1", '0', '01', '-1', '2147483648'].map(
        (id) => `rwp_${b64(id)}.${b64(secret)}`
      ),
      `rwp_${b64('42')}.${b64(seed + '0')}`, // checksum does not match
      `rwp_${b64('42')}.${b64(secret)}=`, // padding
      `oat_${b64('42')}.${b64(secret)}`,
      `rwp_${b64('42')}.${b64(secret)}.x`,
      `rwp_${b64('42')}`,
      '',
    ]
    for (const value of bad) assert.isNull(parseAccessToken(value), value)
    assert.isNull(parseAccessToken(undefined))
  })

  test('bearerTokenOf takes exactly "Bearer <token>"', ({ assert }) => {
    assert.equal(bearerTokenOf('Bearer abc'), 'abc')
    assert.equal(bearerTokenOf('bearer abc'), 'abc')
    for (const header of [
      'Bearer',
      'Bearer ',
      'Bearer  abc',
      'Basic abc',
      'Bearer a b',
      undefined,
    ]) {
      assert.isNull(bearerTokenOf(header), String(header))
    }
  })
})

test.group('bigint ids and JSON bounds', () => {
  test('canonicalBigintId', ({ assert }) => {
    assert.equal(canonicalBigintId('007'), '7')
    assert.equal(canonicalBigintId('9223372036854775807'), '9223372036854775807')
    for (const value of [
      '0',
      '9223372036854775808',
      '99999999999999999999',
      '1.5',
      '-1',
      '',
      'a',
    ]) {
      assert.isNull(canonicalBigintId(value), value)
    }
    assert.isNull(canonicalBigintId('0'.repeat(64) + '1'))
  })

  test('assertJsonDepth counts brackets outside strings only', ({ assert }) => {
    assertJsonDepth('{"a":"[[[[[[[[[[","b":[1]}', 2)
    assertJsonDepth('{"a":"\\"[[[["}', 1)
    assert.throws(() => assertJsonDepth('{"a":[[1]]}', 2), /nested deeper than 2/)
    assert.throws(() => assertJsonDepth('['.repeat(100_000), 64), /nested deeper than 64/)
  })

  test('assertJsonMediaType', ({ assert }) => {
    assertJsonMediaType('application/json')
    assertJsonMediaType('Application/JSON; charset=utf-8')
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      undefined,
      'application/json; charset=latin1',
    ]) {
      assert.throws(() => assertJsonMediaType(type), /Unsupported request body/)
    }
  })
})
