import { createDecipheriv, scryptSync } from 'node:crypto'
import { test } from '@japa/runner'
import { ready, Signer } from 'signify-ts'
import {
  DEFAULT_SCRYPT,
  decodeKeystore,
  encodeKeystore,
  keystoreSigners,
  type KeystoreSecrets,
} from '#app/governance/keystore'

await ready()

const FAST = { n: 2 ** 10, r: 8, p: 1 }
const PASSPHRASE = 'correct horse battery staple'
const SECRETS: KeystoreSecrets = {
  aid: 'EAKCxMOuoRzREVHsHCkLilBrUXTvyenBiuM2QtV8BB0C',
  current: [new Uint8Array(32).fill(0x11)],
  next: [new Uint8Array(32).fill(0x22)],
}

/** Bytes 0, 1, 2, … (salt 00..0f, nonce 10..1b). */
function counter() {
  let next = 0
  return (n: number) => new Uint8Array(n).map(() => next++)
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (error) {
    return (error as { code?: string }).code
  }
}

test.group('governance / keystore', () => {
  test('round trip gives back the seeds; signers derive the same keys', ({ assert }) => {
    const text = encodeKeystore(SECRETS, PASSPHRASE, counter(), FAST)
    const opened = decodeKeystore(text, PASSPHRASE)
    assert.deepEqual(opened, SECRETS)
    const signers = keystoreSigners(opened)
    assert.equal(
      signers.current[0].verfer.qb64,
      new Signer({ raw: SECRETS.current[0] }).verfer.qb64
    )
    assert.deepEqual(DEFAULT_SCRYPT, { n: 131072, r: 8, p: 1 })
  })

  test('the documented format opens with node:crypto alone (scrypt, AES-256-GCM, header as AAD)', ({
    assert,
  }) => {
    const file = JSON.parse(encodeKeystore(SECRETS, PASSPHRASE, counter(), FAST))
    assert.deepEqual(Object.keys(file), ['format', 'aid', 'kdf', 'cipher', 'ciphertext'])
    assert.deepEqual(file.kdf, {
      name: 'scrypt',
      n: 1024,
      r: 8,
      p: 1,
      salt: 'AAECAwQFBgcICQoLDA0ODw',
    })
    assert.deepEqual(file.cipher, { name: 'aes-256-gcm', nonce: 'EBESExQVFhcYGRob' })
    const key = scryptSync(PASSPHRASE, Buffer.from(file.kdf.salt, 'base64url'), 32, {
      N: 1024,
      r: 8,
      p: 1,
    })
    const sealed = Buffer.from(file.ciphertext, 'base64url')
    const decipher = createDecipheriv(
      'aes-256-gcm',
      key,
      Buffer.from(file.cipher.nonce, 'base64url')
    )
    const { format, aid, kdf, cipher } = file
    decipher.setAAD(Buffer.from(JSON.stringify({ format, aid, kdf, cipher })))
    decipher.setAuthTag(sealed.subarray(-16))
    const plain = JSON.parse(
      Buffer.concat([decipher.update(sealed.subarray(0, -16)), decipher.final()]).toString()
    )
    assert.deepEqual(plain, {
      current: [new Signer({ raw: SECRETS.current[0] }).qb64],
      next: [new Signer({ raw: SECRETS.next[0] }).qb64],
    })
  })

  test('a wrong passphrase fails with E_KEYSTORE_PASSPHRASE', ({ assert }) => {
    const text = encodeKeystore(SECRETS, PASSPHRASE, counter(), FAST)
    assert.equal(
      codeOf(() => decodeKeystore(text, 'correct horse battery stapler')),
      'E_KEYSTORE_PASSPHRASE'
    )
    assert.equal(
      codeOf(() => decodeKeystore(text, '')),
      'E_KEYSTORE_PASSPHRASE'
    )
  })

  test('altering the header or the ciphertext fails like a wrong passphrase', ({ assert }) => {
    const file = JSON.parse(encodeKeystore(SECRETS, PASSPHRASE, counter(), FAST))
    const altered = [
      { ...file, aid: 'EIflL4H4134zYoRM6ls6Q086RLC_BhfNFh5uk-WxvhsL' },
      { ...file, kdf: { ...file.kdf, n: 2048 } },
      { ...file, ciphertext: (file.ciphertext[0] === 'A' ? 'B' : 'A') + file.ciphertext.slice(1) },
    ]
    for (const bad of altered) {
      assert.equal(
        codeOf(() => decodeKeystore(JSON.stringify(bad), PASSPHRASE)),
        'E_KEYSTORE_PASSPHRASE'
      )
    }
  })

  test('the file holds no seed and no passphrase in clear', ({ assert }) => {
    const text = encodeKeystore(SECRETS, PASSPHRASE, counter(), FAST)
    assert.notInclude(text, PASSPHRASE)
    for (const seed of [...SECRETS.current, ...SECRETS.next]) {
      const buf = Buffer.from(seed)
      for (const form of [
        buf.toString('hex'),
        buf.toString('base64'),
        buf.toString('base64url'),
        new Signer({ raw: seed }).qb64,
        new Signer({ raw: seed }).qb64.slice(1, 30),
      ]) {
        assert.notInclude(text, form)
      }
      assert.isFalse(Buffer.from(text).includes(buf), 'raw seed bytes')
    }
  })

  test('malformed files and dangerous parameters are E_KEYSTORE_INVALID', ({ assert }) => {
    const file = JSON.parse(encodeKeystore(SECRETS, PASSPHRASE, counter(), FAST))
    for (const text of [
      'not json',
      JSON.stringify({ ...file, format: 'other' }),
      JSON.stringify({ ...file, kdf: { ...file.kdf, n: 2 ** 30 } }),
      JSON.stringify({ ...file, kdf: { ...file.kdf, n: 1000 } }),
      JSON.stringify({ ...file, ciphertext: '' }),
    ]) {
      assert.equal(
        codeOf(() => decodeKeystore(text, PASSPHRASE)),
        'E_KEYSTORE_INVALID',
        text.slice(0, 40)
      )
    }
    assert.equal(
      codeOf(() => encodeKeystore(SECRETS, '', counter(), FAST)),
      'E_KEYSTORE_INVALID'
    )
    const short = { ...SECRETS, next: [new Uint8Array(16)] }
    assert.equal(
      codeOf(() => encodeKeystore(short, PASSPHRASE, counter(), FAST)),
      'E_KEYSTORE_INVALID'
    )
  })
})
