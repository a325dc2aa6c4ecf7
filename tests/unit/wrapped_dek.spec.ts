import { test } from '@japa/runner'
import { splitWrappedDek, wrappedDekVersion } from '#crypto/wrapped_dek'
import {
  formatWrapped,
  parseWrapped,
  aliasSegment,
  kekFromSegment,
} from '#kms/drivers/aws_kms_layout'

test.group('wrapped DEK prefixes of every driver', () => {
  test('the version of vault:vN:, aws:vN: and azure:vN: strings, without decoding', ({
    assert,
  }) => {
    assert.equal(wrappedDekVersion('vault:v1:AAAA'), 1)
    assert.equal(wrappedDekVersion('vault:v7:not-even-base64'), 7)
    assert.equal(wrappedDekVersion('azure:v3:0a1b:AQID'), 3)
    assert.equal(wrappedDekVersion('aws:v12:AQID'), 12)
    assert.equal(wrappedDekVersion('azure-kv:v3:x'), 3)
    for (const bad of [
      '',
      'vault:v0:AAAA',
      'azure:3:0a1b:AQID',
      'Azure:v3:x',
      'plain',
      'aws:v0:AAAA',
      'aws:1:AAAA',
      'AWS:v1:AAAA',
      'aws:v1',
      ':v1:AA',
      'x',
    ]) {
      assert.isNull(wrappedDekVersion(bad), bad)
    }
    assert.isNull(wrappedDekVersion(42 as unknown as string))
  })

  test('split keeps the body as written', ({ assert }) => {
    assert.deepEqual(splitWrappedDek('aws:v2:a:b'), { scheme: 'aws', version: 2, body: 'a:b' })
  })

  test('aws:vN: round-trips a ciphertext blob; other schemes and bad base64 are refused', ({
    assert,
  }) => {
    const blob = Buffer.from([1, 2, 3, 250, 251])
    const wrapped = formatWrapped(4, blob)
    assert.equal(wrapped, 'aws:v4:AQID+vs=')
    assert.deepEqual(parseWrapped(wrapped), { version: 4, blob })
    assert.isNull(parseWrapped('vault:v4:AQID+vs='))
    assert.isNull(parseWrapped('aws:v4:AQID+vs'))
    assert.isNull(parseWrapped('aws:v4:!!!!'))
  })

  test('KEK names map one-to-one onto alias segments', ({ assert }) => {
    for (const name of ['orders', 'a.b', 'a_b', 'a_2Eb', 'x-1_.2', 'A9']) {
      const segment = aliasSegment(name)
      assert.match(segment, /^[A-Za-z0-9_-]+$/)
      assert.equal(kekFromSegment(segment), name)
    }
    assert.notEqual(aliasSegment('a.b'), aliasSegment('a_2Eb'))
    assert.isNull(kekFromSegment('a_b'))
  })
})
