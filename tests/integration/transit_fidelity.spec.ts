/*
|--------------------------------------------------------------------------
| Transit server conformance: behaviours checked against Vault's source
|--------------------------------------------------------------------------
|
| Part of the transit conformance tests (with the "HTTP surface" group of
| kms_contract.spec.ts). Each case goes through node-vault, the client the
| app's driver uses (`client.write('transit/…')`, `client.status()`,
| `client.tokenLookupSelf()`), or raw HTTP where node-vault cannot express
| the request. The Vault function each expectation comes from is named.
|
*/
import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import vault from 'node-vault'
import { fetchTransport } from '#kms/vault_transport'
import {
  randomId,
  startTransitServer,
  vaultDriverFor,
  type TransitFixture,
} from '#tests/helpers/transit'

type VaultClient = ReturnType<typeof vault>

/** A node-vault client as the app's driver builds it (fetch transport, no debug). */
function clientFor(fixture: TransitFixture, token: string | undefined = fixture.token) {
  return vault({
    'endpoint': fixture.url,
    'token': token,
    'apiVersion': 'v1',
    'request-promise': fetchTransport(10_000),
    'debug': () => {},
  } as any)
}

/** Awaits a node-vault call that must fail; answers its status and Vault's first error. */
async function failure(call: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await call
  } catch (error: any) {
    return { status: error?.response?.statusCode ?? 0, message: String(error?.message) }
  }
  throw new Error('expected the call to fail, but it succeeded')
}

const b64 = (bytes: Buffer) => bytes.toString('base64')

test.group('transit server: fidelity to Vault (node-vault)', (group) => {
  let fixture: TransitFixture
  let client: VaultClient
  const kek = (label: string) => `fidelity-${label}-${randomId()}`

  group.setup(async () => {
    fixture = await startTransitServer()
    client = clientFor(fixture)
    return () => fixture.close()
  })

  /** A key with `versions` versions. */
  async function keyWith(label: string, versions: number): Promise<string> {
    const name = kek(label)
    await client.write(`transit/keys/${name}`, {})
    for (let v = 2; v <= versions; v++) await client.write(`transit/keys/${name}/rotate`, {})
    return name
  }

  test('a retired key_version (min_encryption_version 0) is refused: "no such key version"', async ({
    assert,
  }) => {
    // keysutil.Policy.EncryptWithFactory passes the range checks, then GetKey →
    // safeGetKeyEntry fails: version 1 is no longer among the policy's keys.
    const name = await keyWith('retired', 3)
    const plaintext = b64(randomBytes(32))
    const { data: atTwo } = await client.write(`transit/encrypt/${name}`, {
      plaintext,
      key_version: 2,
    })
    const configured = await client.write(`transit/keys/${name}/config`, {
      min_decryption_version: 2,
    })
    assert.equal(configured.data.min_encryption_version, 0)

    for (const [path, body] of [
      [`transit/encrypt/${name}`, { plaintext, key_version: 1 }],
      [`transit/rewrap/${name}`, { ciphertext: atTwo.ciphertext, key_version: 1 }],
      [`transit/datakey/plaintext/${name}`, { key_version: 1 }],
      [`transit/datakey/wrapped/${name}`, { key_version: 1 }],
    ] as const) {
      assert.deepEqual(await failure(client.write(path, body)), {
        status: 400,
        message: 'no such key version',
      })
    }
    const batch = await failure(
      client.write(`transit/encrypt/${name}`, {
        batch_input: [{ plaintext, key_version: 1 }, { plaintext }],
      })
    )
    assert.equal(batch.status, 400)
    const rewrapped = await client.write(`transit/rewrap/${name}`, {
      batch_input: [{ ciphertext: atTwo.ciphertext, key_version: 1, reference: 'r' }],
    })
    assert.deepEqual(rewrapped.data.batch_results, [
      { error: 'no such key version', reference: 'r' },
    ])

    // The app's driver sees it as a disallowed version, not a success it cannot undo.
    const { driver } = vaultDriverFor(fixture)
    const [result] = await driver.rewrap(name, [atTwo.ciphertext], 1)
    assert.isFalse(result.ok)
    assert.equal((result as any).code, 'E_KEY_VERSION_DISALLOWED')
    await driver.close()
  })

  test('after a trim, min_encryption_version 0 is refused (pathKeysConfigWrite)', async ({
    assert,
  }) => {
    const name = await keyWith('trimmed', 3)
    await client.write(`transit/keys/${name}/config`, {
      min_decryption_version: 2,
      min_encryption_version: 2,
    })
    await client.write(`transit/keys/${name}/trim`, { min_available_version: 2 })

    assert.deepEqual(
      await failure(client.write(`transit/keys/${name}/config`, { min_encryption_version: 0 })),
      {
        status: 400,
        message: 'min encryption version should not be less than min available version',
      }
    )
    assert.deepEqual(
      await failure(client.write(`transit/keys/${name}/config`, { min_decryption_version: 1 })),
      {
        status: 400,
        message: 'min decryption version should not be less then min available version',
      }
    )
    const { data } = await client.read(`transit/keys/${name}`)
    assert.equal(data.min_encryption_version, 2)
    assert.equal(data.min_decryption_version, 2)
    const raised = await client.write(`transit/keys/${name}/config`, { min_encryption_version: 3 })
    assert.equal(raised.data.min_encryption_version, 3)
  })

  test("batch rewrap uses each item's key_version, never the top-level one (pathRewrapWrite)", async ({
    assert,
  }) => {
    const name = kek('rewrap-items')
    const { data: old } = await client.write(`transit/encrypt/${name}`, {
      plaintext: b64(randomBytes(32)),
    })
    await client.write(`transit/keys/${name}/rotate`, {})
    await client.write(`transit/keys/${name}/rotate`, {})

    const { data } = await client.write(`transit/rewrap/${name}`, {
      key_version: 2,
      batch_input: [
        { ciphertext: old.ciphertext, reference: 'latest' },
        { ciphertext: old.ciphertext, key_version: 2, reference: 'two' },
        { ciphertext: old.ciphertext, key_version: 1, reference: 'one' },
      ],
    })
    assert.deepEqual(
      data.batch_results.map((r: any) => [r.reference, r.key_version, r.ciphertext.slice(0, 9)]),
      [
        ['latest', 3, 'vault:v3:'],
        ['two', 2, 'vault:v2:'],
        ['one', 1, 'vault:v1:'],
      ]
    )
    // A single ciphertext takes the top-level key_version.
    const single = await client.write(`transit/rewrap/${name}`, {
      ciphertext: old.ciphertext,
      key_version: 2,
    })
    assert.equal(single.data.key_version, 2)
  })

  test('context is ignored on a non-derived key, as Vault ignores it', async ({ assert }) => {
    const name = kek('context')
    await client.write(`transit/keys/${name}`, {})
    const plaintext = b64(randomBytes(32))
    const context = b64(Buffer.from('row 42'))

    const encrypted = await client.write(`transit/encrypt/${name}`, { plaintext, context })
    const decrypted = await client.write(`transit/decrypt/${name}`, {
      ciphertext: encrypted.data.ciphertext,
      context: b64(Buffer.from('another row')),
    })
    assert.equal(decrypted.data.plaintext, plaintext)
    const rewrapped = await client.write(`transit/rewrap/${name}`, {
      ciphertext: encrypted.data.ciphertext,
      context,
    })
    assert.match(rewrapped.data.ciphertext, /^vault:v1:/)
    const datakey = await client.write(`transit/datakey/plaintext/${name}`, { context })
    const opened = await client.write(`transit/decrypt/${name}`, {
      ciphertext: datakey.data.ciphertext,
    })
    assert.equal(opened.data.plaintext, datakey.data.plaintext)

    // Still checked as Vault checks it: base64 per item, all items or none.
    const batch = await failure(
      client.write(`transit/encrypt/${name}`, {
        batch_input: [
          { plaintext, context },
          { plaintext, context: 'not base64!' },
        ],
      })
    )
    assert.equal(batch.status, 400)
    assert.deepEqual(
      await failure(
        client.write(`transit/decrypt/${name}`, {
          batch_input: [{ ciphertext: encrypted.data.ciphertext, context }, { ciphertext: 'x' }],
        })
      ),
      { status: 400, message: 'context should be set either in all the request blocks or in none' }
    )
    assert.deepEqual(
      await failure(client.write(`transit/datakey/wrapped/${name}`, { context: '%%' })),
      { status: 400, message: 'failed to base64-decode context' }
    )

    // On an unknown key Vault would upsert a *derived* key: refused, nothing created.
    const unknown = kek('context-upsert')
    const refused = await failure(
      client.write(`transit/encrypt/${unknown}`, { plaintext, context })
    )
    assert.equal(refused.status, 400)
    const lookup = await failure(client.read(`transit/keys/${unknown}`))
    assert.equal(lookup.status, 404)
  })

  test('decrypt names the cause as DecryptWithFactory does; v0 reads as v1', async ({ assert }) => {
    const name = kek('decrypt-causes')
    const plaintext = b64(randomBytes(32))
    const { data } = await client.write(`transit/encrypt/${name}`, { plaintext })
    const body = data.ciphertext.slice('vault:v1:'.length)

    const cases: Array<[string, string]> = [
      ['vault:v1', 'invalid ciphertext: wrong number of fields'],
      [`vault:vX:${body}`, 'invalid ciphertext: version number could not be decoded'],
      ['vault:v1:!!!!', 'invalid ciphertext: could not decode base64'],
      [`vault:v9:${body}`, 'invalid ciphertext: version is too new'],
      [body, 'invalid ciphertext: no prefix'],
      ['vault:v1:AAAA', 'invalid ciphertext length'],
    ]
    for (const [ciphertext, message] of cases) {
      assert.deepEqual(
        await failure(client.write(`transit/decrypt/${name}`, { ciphertext })),
        { status: 400, message },
        ciphertext.slice(0, 12)
      )
    }
    const batch = await failure(
      client.write(`transit/decrypt/${name}`, {
        batch_input: cases.map(([ciphertext], index) => ({ ciphertext, reference: `${index}` })),
      })
    )
    assert.equal(batch.status, 400)

    const compat = await client.write(`transit/decrypt/${name}`, { ciphertext: `vault:v0:${body}` })
    assert.equal(compat.data.plaintext, plaintext)
    const moved = await client.write(`transit/rewrap/${name}`, { ciphertext: `vault:v0:${body}` })
    assert.match(moved.data.ciphertext, /^vault:v1:/)
  })

  test('transit/random answers random_bytes as HandleRandomAPI does', async ({ assert }) => {
    const first = await client.write('transit/random', {})
    const second = await client.write('transit/random', {})
    assert.lengthOf(Buffer.from(first.data.random_bytes, 'base64'), 32)
    assert.notEqual(first.data.random_bytes, second.data.random_bytes)
    const hex = await client.write('transit/random/64', { format: 'hex' })
    assert.match(hex.data.random_bytes, /^[0-9a-f]{128}$/)
    const sized = await client.write('transit/random', { bytes: 16 })
    assert.lengthOf(Buffer.from(sized.data.random_bytes, 'base64'), 16)
    const sourced = await client.write('transit/random/platform/8', { format: 'hex' })
    assert.match(sourced.data.random_bytes, /^[0-9a-f]{16}$/)

    for (const [path, body, message] of [
      [
        'transit/random',
        { format: 'base32' },
        'unsupported encoding format "base32"; must be "hex" or "base64"',
      ],
      ['transit/random', { bytes: 0 }, '"bytes" cannot be less than 1'],
      ['transit/random/131073', {}, '"bytes" should be less than 131072'],
      [
        'transit/random/abc',
        {},
        'error parsing url-set byte count: strconv.Atoi: parsing "abc": invalid syntax',
      ],
    ] as const) {
      assert.deepEqual(await failure(client.write(path, body)), { status: 400, message })
    }
    const anonymous = clientFor(fixture, 'not-the-token')
    const denied = await failure(anonymous.write('transit/random', {}))
    assert.equal(denied.status, 403)
    const get = await fetch(`${fixture.url}/v1/transit/random`, {
      headers: { 'x-vault-token': fixture.token },
    })
    assert.equal(get.status, 405)
  })

  test('sys/seal-status answers without a token (handleSysSealStatus)', async ({ assert }) => {
    const status = await clientFor(fixture, undefined).status()
    assert.include(status, { initialized: true, sealed: false, t: 1, n: 1, progress: 0 })
    assert.equal(status.type, 'shamir')
    assert.notProperty(status, 'data')
    const post = await fetch(`${fixture.url}/v1/sys/seal-status`, { method: 'POST' })
    assert.equal(post.status, 405)
  })

  test('auth/token/lookup-self describes the token without echoing it', async ({ assert }) => {
    const answer = await client.tokenLookupSelf()
    assert.equal(answer.mount_type, 'token')
    assert.deepEqual(answer.data.policies, ['root'])
    assert.include(answer.data, { id: '', path: 'auth/token/root', ttl: 0, orphan: true })
    assert.isNull(answer.data.expire_time)
    assert.match(answer.data.accessor, /^[0-9a-f-]{36}$/)
    assert.notInclude(JSON.stringify(answer), fixture.token)

    const posted = await fetch(`${fixture.url}/v1/auth/token/lookup-self`, {
      method: 'POST',
      headers: { 'x-vault-token': fixture.token, 'content-type': 'application/json' },
      body: '{}',
    })
    assert.equal(posted.status, 200)
    assert.notInclude(await posted.text(), fixture.token)
    const denied = await failure(clientFor(fixture, `${fixture.token}x`).tokenLookupSelf())
    assert.equal(denied.status, 403)
  })
})
