import { test } from '@japa/runner'
import { formatVaultCiphertext, parseVaultCiphertext } from '#crypto/vault_ciphertext'

test.group('vault ciphertext strings', () => {
  test('format then parse round-trips', ({ assert }) => {
    const bytes = Buffer.from('000102030405060708090a0b0c0d0e0f10', 'hex')
    const text = formatVaultCiphertext(12, bytes)
    assert.equal(text, 'vault:v12:AAECAwQFBgcICQoLDA0ODxA=')
    const parsed = parseVaultCiphertext(text)
    assert.equal(parsed?.version, 12)
    assert.equal(parsed?.bytes.toString('hex'), bytes.toString('hex'))
  })

  test('parses the largest allowed version', ({ assert }) => {
    assert.equal(parseVaultCiphertext('vault:v999999999:AAAA')?.version, 999_999_999)
  })

  test('rejects malformed strings', ({ assert }) => {
    const bad = [
      '',
      'vault:v1:',
      'vault:v0:AAAA',
      'vault:v01:AAAA',
      'vault:v1000000000:AAAA',
      'vault:1:AAAA',
      'vault:vx:AAAA',
      'vault::AAAA',
      'VAULT:v1:AAAA',
      'vault:v1:AAAA:extra',
      ' vault:v1:AAAA',
      'vault:v1:AAAA\n',
      'vault:v1:AA AA',
      'vault:v1:AAA',
      'vault:v1:AA=A',
      'vault:v1:AAAA===',
      'vault:v1:-_-_',
      'vault:v1:AB==',
    ]
    for (const value of bad) assert.isNull(parseVaultCiphertext(value), value)
    assert.isNull(parseVaultCiphertext(42 as unknown as string))
  })
})
