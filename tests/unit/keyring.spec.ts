import { test } from '@japa/runner'
import {
  createKeyring,
  decrypt,
  encrypt,
  encryptionVersion,
  keyringInfo,
  KeyringError,
  rewrap,
  rotateKeyring,
  type Keyring,
} from '#crypto/keyring'
import { configureKeyring, trimKeyring } from '#crypto/keyring_policy'

/** Key bytes 0x00..0x1f. */
const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
/** Nonce a0..ab. */
const NONCE = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex')
const PLAINTEXT = Buffer.from('rewrap known answer')
/**
 * AES-256-GCM(KEY, NONCE, PLAINTEXT) as Vault formats it. Pinned once;
 * cross-checked with Python's `cryptography` AESGCM.
 */
const KNOWN_ANSWER = 'vault:v1:oKGio6SlpqeoqaqrlH0LXyS7ItQMCvC9JxuurQfJKyaUS1fMzlZzdubQLswAxeU='

const fixedNonce = () => Buffer.from(NONCE)
/** Deterministic "random" key bytes: version n → bytes all equal to n. */
const keyFor = (n: number) => Buffer.alloc(32, n)
let counter = 0
const countingRandom = (size: number) => {
  counter++
  const out = Buffer.alloc(size)
  out.writeUInt32BE(counter, 0)
  return out
}

function ringWithVersions(count: number): Keyring {
  let ring = createKeyring('orders', keyFor(1), 1000)
  for (let v = 2; v <= count; v++) ring = rotateKeyring(ring, keyFor(v), 1000 + v)
  return ring
}

function throwsKeyring(fn: () => unknown, message: string | RegExp) {
  try {
    fn()
  } catch (error) {
    if (!(error instanceof KeyringError)) throw error
    if (typeof message === 'string' ? error.message !== message : !message.test(error.message)) {
      throw new Error(`unexpected KeyringError message: ${error.message}`)
    }
    return error
  }
  throw new Error('expected a KeyringError')
}

/** Rewrites the base64 part of a `vault:vN:` string byte-wise. */
function mutate(value: string, change: (bytes: Buffer) => Buffer) {
  const [, version, body] = value.split(':')
  return `vault:${version}:${change(Buffer.from(body, 'base64')).toString('base64')}`
}

test.group('keyring: known answer', () => {
  test('fixed key + fixed nonce → exact vault:v1 string', ({ assert }) => {
    const ring = createKeyring('known', KEY, 1_700_000_000)
    assert.equal(encrypt(ring, PLAINTEXT, fixedNonce), KNOWN_ANSWER)
  })

  test('the known answer decrypts to the plaintext', ({ assert }) => {
    const ring = createKeyring('known', KEY, 1_700_000_000)
    assert.equal(decrypt(ring, KNOWN_ANSWER).toString(), PLAINTEXT.toString())
  })

  test('fresh nonces give different ciphertexts for the same plaintext', ({ assert }) => {
    const ring = createKeyring('known', KEY, 0)
    assert.notEqual(
      encrypt(ring, PLAINTEXT, countingRandom),
      encrypt(ring, PLAINTEXT, countingRandom)
    )
  })
})

test.group('keyring: tampering', () => {
  const ring = createKeyring('known', KEY, 0)

  test('a flipped byte anywhere fails authentication', ({ assert }) => {
    const length = Buffer.from(KNOWN_ANSWER.split(':')[2], 'base64').length
    for (let i = 0; i < length; i++) {
      const tampered = mutate(KNOWN_ANSWER, (b) => {
        b[i] ^= 0x80
        return b
      })
      throwsKeyring(() => decrypt(ring, tampered), 'cipher: message authentication failed')
    }
    assert.isTrue(true)
  })

  test('truncated ciphertexts are refused', () => {
    for (const keep of [0, 5, 12, 27, 28, 30]) {
      const truncated = mutate(KNOWN_ANSWER, (b) => b.subarray(0, keep))
      throwsKeyring(() => decrypt(ring, truncated), /^(invalid ciphertext|cipher: )/)
    }
  })

  test('prefixes and versions are read as Vault reads them (DecryptWithFactory)', ({ assert }) => {
    const body = KNOWN_ANSWER.slice('vault:v1:'.length)
    throwsKeyring(() => decrypt(ring, body), 'invalid ciphertext: no prefix')
    throwsKeyring(() => decrypt(ring, `vault:${body}`), 'invalid ciphertext: no prefix')
    throwsKeyring(() => decrypt(ring, `Vault:v1:${body}`), 'invalid ciphertext: no prefix')
    throwsKeyring(() => decrypt(ring, 'vault:v1'), 'invalid ciphertext: wrong number of fields')
    for (const version of ['x', '', '1.0', ' 1', '0x1', '99999999999999999999']) {
      throwsKeyring(
        () => decrypt(ring, `vault:v${version}:${body}`),
        'invalid ciphertext: version number could not be decoded'
      )
    }
    throwsKeyring(() => decrypt(ring, `vault:v2:${body}`), 'invalid ciphertext: version is too new')
    throwsKeyring(
      () => decrypt(ring, `vault:v9223372036854775807:${body}`),
      'invalid ciphertext: version is too new'
    )
    throwsKeyring(
      () => decrypt(ring, `vault:v-1:${body}`),
      'ciphertext or signature version is disallowed by policy (too old)'
    )
    // Compatibility mode: v0 (and Atoi's "+1", "01") is version 1.
    for (const version of ['0', '+1', '01']) {
      assert.equal(decrypt(ring, `vault:v${version}:${body}`).toString(), PLAINTEXT.toString())
    }
  })

  test("bad base64 and short bodies are refused with Vault's messages", () => {
    for (const bad of ['vault:v1:!!!!', 'vault:v1:AAA', 'vault:v1:AA AA', 'vault:v1:AA=A']) {
      throwsKeyring(() => decrypt(ring, bad), 'invalid ciphertext: could not decode base64')
    }
    throwsKeyring(() => decrypt(ring, 'vault:v1:'), 'invalid ciphertext length')
    throwsKeyring(() => decrypt(ring, 'vault:v1:AAAA'), 'invalid ciphertext length')
    throwsKeyring(
      () => decrypt(ring, 'vault:v1:AAAA:extra'),
      'invalid ciphertext: could not decode base64'
    )
  })

  test('a ciphertext of another key (same version) fails authentication', () => {
    const other = createKeyring('other', keyFor(9), 0)
    throwsKeyring(() => decrypt(other, KNOWN_ANSWER), 'cipher: message authentication failed')
  })
})

test.group('keyring: versions and policy', () => {
  test('rotate adds versions without mutating the input', ({ assert }) => {
    const one = createKeyring('orders', keyFor(1), 1000)
    const two = rotateKeyring(one, keyFor(2), 2000)
    assert.equal(one.latestVersion, 1)
    assert.equal(two.latestVersion, 2)
    assert.deepEqual(keyringInfo(two).keys, { 1: 1000, 2: 2000 })
    assert.match(encrypt(two, PLAINTEXT, countingRandom), /^vault:v2:/)
    assert.throws(() => rotateKeyring(two, Buffer.alloc(16), 0), /32 bytes/)
  })

  test('old versions still decrypt; rewrap moves to the latest or a chosen version', ({
    assert,
  }) => {
    const one = createKeyring('orders', keyFor(1), 0)
    const old = encrypt(one, PLAINTEXT, countingRandom)
    const three = rotateKeyring(rotateKeyring(one, keyFor(2), 0), keyFor(3), 0)
    assert.equal(decrypt(three, old).toString(), PLAINTEXT.toString())
    assert.match(rewrap(three, old, countingRandom), /^vault:v3:/)
    const toTwo = rewrap(three, old, countingRandom, 2)
    assert.match(toTwo, /^vault:v2:/)
    assert.equal(decrypt(three, toTwo).toString(), PLAINTEXT.toString())
  })

  test('min_decryption_version retires versions reversibly and hides them', ({ assert }) => {
    const ring = ringWithVersions(3)
    const old = encrypt(ring, PLAINTEXT, countingRandom, 1)
    const retired = configureKeyring(ring, { minDecryptionVersion: 2 })
    throwsKeyring(
      () => decrypt(retired, old),
      'ciphertext or signature version is disallowed by policy (too old)'
    )
    assert.deepEqual(Object.keys(keyringInfo(retired).keys), ['2', '3'])
    const restored = configureKeyring(retired, { minDecryptionVersion: 1 })
    assert.equal(decrypt(restored, old).toString(), PLAINTEXT.toString())
    assert.equal(configureKeyring(ring, { minDecryptionVersion: 0 }).minDecryptionVersion, 1)
    throwsKeyring(
      () => configureKeyring(ring, { minDecryptionVersion: 4 }),
      'cannot set min decryption version of 4, latest key version is 3'
    )
    throwsKeyring(
      () => configureKeyring(ring, { minDecryptionVersion: -1 }),
      'min decryption version cannot be negative'
    )
  })

  test('min_encryption_version limits the versions new encryptions may use', ({ assert }) => {
    const ring = configureKeyring(ringWithVersions(3), { minEncryptionVersion: 2 })
    assert.equal(encryptionVersion(ring), 3)
    assert.equal(encryptionVersion(ring, 2), 2)
    throwsKeyring(
      () => encryptionVersion(ring, 1),
      'requested version for encryption is less than the minimum encryption key version'
    )
    throwsKeyring(
      () => encryptionVersion(ring, 4),
      'requested version for encryption is higher than the latest key version'
    )
    throwsKeyring(
      () => configureKeyring(ring, { minDecryptionVersion: 3 }),
      'cannot set min encryption/decryption values; min encryption version of 2 must be greater than or equal to min decryption version of 3'
    )
  })

  test('a retired version cannot encrypt: "no such key version" (EncryptWithFactory)', ({
    assert,
  }) => {
    // min_encryption_version 0 lets any version pass the range checks; Vault
    // then fails the key lookup because version 1 left the policy's keys.
    const ring = configureKeyring(ringWithVersions(3), { minDecryptionVersion: 2 })
    assert.equal(ring.minEncryptionVersion, 0)
    throwsKeyring(() => encryptionVersion(ring, 1), 'no such key version')
    throwsKeyring(() => encrypt(ring, PLAINTEXT, countingRandom, 1), 'no such key version')
    const current = encrypt(ring, PLAINTEXT, countingRandom, 2)
    throwsKeyring(() => rewrap(ring, current, countingRandom, 1), 'no such key version')
    assert.equal(decrypt(ring, current).toString(), PLAINTEXT.toString())
    assert.equal(encryptionVersion(ring, 2), 2)
  })

  test('trim: refused with min_encryption_version 0, bounded, never decremented', ({ assert }) => {
    const ring = ringWithVersions(4)
    throwsKeyring(
      () => trimKeyring(ring, 2),
      'minimum available version cannot be set when minimum encryption version is not set'
    )
    const configured = configureKeyring(ring, { minDecryptionVersion: 2, minEncryptionVersion: 3 })
    throwsKeyring(() => trimKeyring(configured, 3), /greater than minimum decryption version/)
    throwsKeyring(() => trimKeyring(configured, 0), 'minimum available version should be positive')
    const trimmed = trimKeyring(configured, 2)
    assert.equal(trimmed.minAvailableVersion, 2)
    assert.deepEqual(Object.keys(trimmed.versions), ['2', '3', '4'])
    throwsKeyring(() => trimKeyring(trimmed, 1), 'minimum available version cannot be decremented')
    throwsKeyring(
      () => configureKeyring(trimmed, { minDecryptionVersion: 1 }),
      'min decryption version should not be less then min available version'
    )
    // path_keys_config.go: min_encryption_version 0 ("latest") is below min_available_version.
    throwsKeyring(
      () => configureKeyring(trimmed, { minEncryptionVersion: 0 }),
      'min encryption version should not be less than min available version'
    )
    assert.equal(configureKeyring(trimmed, { minEncryptionVersion: 3 }).minEncryptionVersion, 3)
    const further = configureKeyring(trimmed, { minEncryptionVersion: 4, minDecryptionVersion: 4 })
    assert.deepEqual(Object.keys(trimKeyring(further, 4).versions), ['4'])
  })

  test('keyringInfo never exposes key material', ({ assert }) => {
    const info = JSON.stringify(keyringInfo(ringWithVersions(2)))
    assert.notInclude(info, keyFor(1).toString('base64'))
    assert.notInclude(info, keyFor(2).toString('hex'))
    assert.notInclude(info, '"key"')
  })
})
