import { webcrypto } from 'node:crypto'
import { test } from '@japa/runner'
import {
  ENVELOPE_V1,
  EnvelopeError,
  entryAad,
  generateDek,
  openEnvelope,
  openJson,
  sealEnvelope,
  sealJson,
} from '#crypto/envelope'

/*
| Known-answer vector (pinned). Changing the envelope format or the AAD
| layout breaks it on purpose: stored rows would no longer open.
*/
const DEK = Buffer.from(Array.from({ length: 32 }, (_, i) => i)) // 00 01 … 1f
const NONCE = Buffer.from(Array.from({ length: 12 }, (_, i) => 0xa0 + i)) // a0 … ab
const PLAINTEXT = Buffer.from('{"hello":"world"}', 'utf8')
const AAD_HEX = '7265777261702f656e7472792f7631006f7264657273003432' // "rewrap/entry/v1\0orders\042"
const ENVELOPE_HEX =
  '01' + // format
  'a0a1a2a3a4a5a6a7a8a9aaab' + // nonce
  '9d3a144829a76d9d5847f0bc7516a4fc0d' + // AES-256-GCM ciphertext (17 bytes)
  'a822cb7a4c66605ce8fb1754ef8521f2' // tag

/** Regions of the known-answer envelope: [start, end). */
const REGIONS = {
  format: [0, 1],
  nonce: [1, 13],
  ciphertext: [13, 30],
  tag: [30, 46],
} as const

function kat() {
  return Buffer.from(ENVELOPE_HEX, 'hex')
}

function aad() {
  return entryAad('42', 'orders')
}

test.group('envelope / known answer', () => {
  test('the AAD layout is pinned', ({ assert }) => {
    assert.equal(aad().toString('hex'), AAD_HEX)
    assert.equal(entryAad(42n, 'orders').toString('hex'), AAD_HEX)
  })

  test('sealing a fixed DEK, nonce and AAD gives the pinned bytes', ({ assert }) => {
    const envelope = sealEnvelope(DEK, NONCE, PLAINTEXT, aad())
    assert.equal(envelope.toString('hex'), ENVELOPE_HEX)
    assert.equal(envelope[0], ENVELOPE_V1)
    assert.lengthOf(envelope, 1 + 12 + PLAINTEXT.length + 16)
  })

  test('the pinned bytes are plain AES-256-GCM (checked with WebCrypto)', async ({ assert }) => {
    const key = await webcrypto.subtle.importKey('raw', DEK, 'AES-GCM', false, ['encrypt'])
    const sealed = Buffer.from(
      await webcrypto.subtle.encrypt(
        { name: 'AES-GCM', iv: NONCE, additionalData: aad(), tagLength: 128 },
        key,
        PLAINTEXT
      )
    )
    assert.equal(Buffer.concat([Buffer.from([1]), NONCE, sealed]).toString('hex'), ENVELOPE_HEX)
  })

  test('the pinned bytes open to the plaintext', ({ assert }) => {
    assert.equal(openEnvelope(DEK, kat(), aad()).toString('utf8'), '{"hello":"world"}')
    assert.deepEqual(openJson(DEK, kat(), aad()), { hello: 'world' })
  })
})

test.group('envelope / round trips', () => {
  test('sealJson / openJson round-trip: {name}')
    .with([
      { name: 'object', value: { a: 1, nested: { list: [1, 'two', null] } } },
      { name: 'array', value: [1, 2, 3] },
      { name: 'unicode string', value: 'a string with ünïcode ✓' },
      { name: 'zero', value: 0 },
      { name: 'false', value: false },
      { name: 'empty string', value: '' },
    ])
    .run(({ assert }, { value }) => {
      const dek = generateDek(() => Buffer.alloc(32, 9))
      const envelope = sealJson(dek, value, entryAad('7', 'k'), (n) => Buffer.alloc(n, 3))
      assert.deepEqual(openJson(dek, envelope, entryAad('7', 'k')), value)
    })

  test('sealJson takes its nonce from the injected randomness', ({ assert }) => {
    const envelope = sealJson(DEK, { hello: 'world' }, aad(), () => NONCE)
    assert.equal(envelope.toString('hex'), ENVELOPE_HEX)
  })
})

test.group('envelope / tampering', () => {
  function assertRejected(assert: any, fn: () => unknown, message?: RegExp) {
    let caught: unknown
    try {
      fn()
    } catch (error) {
      caught = error
    }
    assert.instanceOf(caught, EnvelopeError)
    assert.equal((caught as EnvelopeError).code, 'E_CIPHERTEXT_INVALID')
    if (message) assert.match((caught as Error).message, message)
    // The error never carries key or plaintext bytes.
    assert.notInclude((caught as Error).message, 'hello')
    assert.notInclude((caught as Error).message, DEK.toString('hex'))
  }

  for (const [region, [start, end]] of Object.entries(REGIONS)) {
    test(`flipping bits in every byte of the ${region} is rejected`, ({ assert }) => {
      for (let offset = start; offset < end; offset++) {
        for (const bit of [0x01, 0x80]) {
          const envelope = kat()
          envelope[offset] ^= bit
          assertRejected(assert, () => openEnvelope(DEK, envelope, aad()))
        }
      }
    })
  }

  test('a wrong format byte is rejected as an unknown format', ({ assert }) => {
    for (const format of [0x00, 0x02, 0xff]) {
      const envelope = kat()
      envelope[0] = format
      assertRejected(assert, () => openEnvelope(DEK, envelope, aad()), /unknown envelope format/)
    }
  })

  test('truncated envelopes are rejected', ({ assert }) => {
    const envelope = kat()
    for (const length of [0, 1, 13, 28, 29, envelope.length - 16, envelope.length - 1]) {
      assertRejected(assert, () => openEnvelope(DEK, envelope.subarray(0, length), aad()))
    }
  })

  test('an appended byte is rejected', ({ assert }) => {
    const envelope = Buffer.concat([kat(), Buffer.from([0])])
    assertRejected(assert, () => openEnvelope(DEK, envelope, aad()))
  })

  test('the AAD binds the row id', ({ assert }) => {
    for (const id of ['43', '4', '420', '042', '']) {
      assertRejected(assert, () => openEnvelope(DEK, kat(), entryAad(id, 'orders')))
    }
  })

  test('the AAD binds the KEK name', ({ assert }) => {
    for (const name of ['Orders', 'orders2', 'order', '']) {
      assertRejected(assert, () => openEnvelope(DEK, kat(), entryAad('42', name)))
    }
  })

  test('a wrong DEK is rejected', ({ assert }) => {
    const other = Buffer.from(DEK)
    other[31] ^= 1
    assertRejected(assert, () => openEnvelope(other, kat(), aad()))
  })
})
