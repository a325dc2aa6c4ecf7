import { test } from '@japa/runner'
import { entryAad, openEnvelope, sealEnvelope } from '#crypto/envelope'

test.group('envelope', () => {
  test('seal then open round-trips', ({ assert }) => {
    const dek = Buffer.alloc(32, 7)
    const nonce = Buffer.alloc(12, 1)
    const aad = entryAad('42', 'orders')
    const env = sealEnvelope(dek, nonce, Buffer.from('hello'), aad)
    assert.equal(openEnvelope(dek, env, aad).toString(), 'hello')
  })
})
