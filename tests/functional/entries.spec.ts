import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import type { ApiResponse } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { freePort } from '#tests/helpers/transit'
import { VaultKmsDriver } from '#kms/drivers/vault'
import { DekCache } from '#services/dek_cache'
import { KekService } from '#services/kek_service'
import { entriesToken } from '#tests/helpers/auth'
import { secretMarker } from '#tests/helpers/secrets'
import { DownDriver, realDriver, swapKms } from './support/kms_doubles.js'

/*
| Each group owns its KEKs (unique names) and the rows it creates.
*/
const run = randomBytes(3).toString('hex')
const kekName = (tag: string) => `fn-entries-${tag}-${run}`

/** Asserts the error body shape `{ errors: [{ code, message }] }` and the code. */
function assertError(
  assert: any,
  response: ApiResponse,
  status: number,
  code: string,
  secrets: string[] = []
) {
  assert.equal(response.status(), status, response.text())
  const body = response.body()
  assert.isArray(body.errors)
  assert.isAbove(body.errors.length, 0)
  for (const error of body.errors) {
    assert.isString(error.code)
    assert.isString(error.message)
  }
  assert.equal(body.errors[0].code, code)
  for (const secret of secrets) assert.notInclude(response.text(), secret)
}

async function createKek(name: string) {
  const keks = await app.container.make(KekService)
  await keks.create(name, { ifMissing: true })
}

async function rowCount(kek?: string): Promise<number> {
  const query = db.from('vault_entries').count('* as n')
  if (kek) query.where('kek_name', kek)
  const [row] = await query
  return Number(row.n)
}

async function rawRow(id: string) {
  return db.from('vault_entries').where('id', id).first()
}

/** Raw HTTP (for bodies the API client would not send). */
function url(path: string) {
  return `http://${process.env.HOST}:${process.env.PORT}${path}`
}

test.group('entries / CRUD', (group) => {
  const kek = kekName('crud')
  let token: string
  group.setup(async () => {
    await createKek(kek)
    token = await entriesToken()
  })

  test('POST creates an entry: 201 {id, kekName, kekVersion}', async ({ client, assert }) => {
    const marker = secretMarker('crud-create')
    const response = await client
      .post('/entries')
      .bearerToken(token)
      .json({ kek, data: { marker } })
    response.assertStatus(201)
    const body = response.body()
    assert.deepEqual(Object.keys(body).sort(), ['id', 'kekName', 'kekVersion'])
    assert.match(body.id, /^[1-9][0-9]*$/)
    assert.equal(body.kekName, kek)
    assert.equal(body.kekVersion, 1)

    const row = await rawRow(body.id)
    assert.equal(row.kek_name, kek)
    assert.equal(row.kek_version, 1)
    assert.match(row.wrapped_dek, /^vault:v1:/)
    assert.equal(row.ciphertext[0], 0x01)
    assert.notInclude(row.ciphertext.toString('latin1'), marker)
  })

  test('GET returns the decrypted data: {name}')
    .with([
      { name: 'object', data: { a: 1, nested: { list: [1, 'two', null] } } },
      { name: 'array', data: [1, 2, 3] },
      { name: 'string', data: 'ünïcode ✓' },
      { name: 'zero', data: 0 },
      { name: 'false', data: false },
      { name: 'empty string', data: '' },
    ])
    .run(async ({ client, assert }, { data }) => {
      const created = await client.post('/entries').bearerToken(token).json({ kek, data })
      created.assertStatus(201)
      const id = created.body().id
      const response = await client.get(`/entries/${id}`).bearerToken(token)
      response.assertStatus(200)
      assert.deepEqual(response.body().data, data)
      assert.equal(response.body().id, id)
      assert.equal(response.body().kekName, kek)
      assert.equal(response.body().kekVersion, 1)
      assert.isString(response.body().createdAt)
    })

  test('a large entry (500 KB) round-trips', async ({ client, assert }) => {
    const data = { blob: 'x'.repeat(500_000) }
    const created = await client.post('/entries').bearerToken(token).json({ kek, data })
    created.assertStatus(201)
    const response = await client.get(`/entries/${created.body().id}`).bearerToken(token)
    response.assertStatus(200)
    assert.equal(response.body().data.blob.length, 500_000)
  })

  test('PUT rewrites the data under a fresh DEK', async ({ client, assert }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'v1' })
    const id = created.body().id
    const before = await rawRow(id)

    const marker = secretMarker('crud-update')
    const response = await client
      .put(`/entries/${id}`)
      .bearerToken(token)
      .json({ data: { marker } })
    response.assertStatus(200)
    assert.deepEqual(response.body(), { id, kekName: kek, kekVersion: 1 })

    const after = await rawRow(id)
    assert.notEqual(after.wrapped_dek, before.wrapped_dek)
    assert.notDeepEqual(after.ciphertext, before.ciphertext)
    const read = await client.get(`/entries/${id}`).bearerToken(token)
    assert.deepEqual(read.body().data, { marker })
  })

  test('DELETE answers 204; the entry is gone', async ({ client, assert }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 1 })
    const id = created.body().id
    const response = await client.delete(`/entries/${id}`).bearerToken(token)
    response.assertStatus(204)
    assert.equal(response.text(), '')
    assert.notExists(await rawRow(id))

    assertError(
      assert,
      await client.get(`/entries/${id}`).bearerToken(token),
      404,
      'E_ENTRY_NOT_FOUND'
    )
    assertError(
      assert,
      await client.delete(`/entries/${id}`).bearerToken(token),
      404,
      'E_ENTRY_NOT_FOUND'
    )
    assertError(
      assert,
      await client.put(`/entries/${id}`).bearerToken(token).json({ data: 2 }),
      404,
      'E_ENTRY_NOT_FOUND'
    )
  })

  test('ids with leading zeros name the same entry', async ({ client, assert }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'z' })
    const id = created.body().id
    const response = await client.get(`/entries/000${id}`).bearerToken(token)
    response.assertStatus(200)
    assert.equal(response.body().id, id)
    assert.equal(response.body().data, 'z')
  })
})

test.group('entries / not found and bad input', (group) => {
  const kek = kekName('bad')
  let token: string
  group.setup(async () => {
    await createKek(kek)
    token = await entriesToken()
  })

  for (const method of ['get', 'put', 'delete'] as const) {
    test(`${method.toUpperCase()} of an unknown id → 404 E_ENTRY_NOT_FOUND`, async ({
      client,
      assert,
    }) => {
      for (const id of ['999999999999', '9223372036854775807', '99999999999999999999999', '0']) {
        let request = client[method](`/entries/${id}`).bearerToken(token)
        if (method === 'put') request = request.json({ data: 1 })
        assertError(assert, await request, 404, 'E_ENTRY_NOT_FOUND')
      }
    })
  }

  test('non-numeric ids → 404', async ({ client, assert }) => {
    for (const id of ['abc', '-1', '1.5', '1e3', '%20']) {
      const response = await client.get(`/entries/${id}`).bearerToken(token)
      assertError(assert, response, 404, 'E_ROUTE_NOT_FOUND')
    }
  })

  test('unknown KEK → 404 E_KEK_NOT_FOUND and nothing is written', async ({ client, assert }) => {
    const unknown = kekName('missing')
    const before = await rowCount()
    const marker = secretMarker('unknown-kek')
    const response = await client
      .post('/entries')
      .bearerToken(token)
      .json({ kek: unknown, data: { marker } })
    assertError(assert, response, 404, 'E_KEK_NOT_FOUND', [marker])
    assert.include(response.body().errors[0].message, unknown)
    assert.equal(await rowCount(unknown), 0)
    assert.equal(await rowCount(), before)
  })

  test('invalid POST body → 422 E_VALIDATION_ERROR ({name})')
    .with([
      { name: 'empty object', body: {}, field: 'kek' },
      { name: 'no data', body: { kek: 'orders' }, field: 'data' },
      { name: 'data null', body: { kek: 'orders', data: null }, field: 'data' },
      { name: 'kek not a string', body: { kek: 12, data: 1 }, field: 'kek' },
      { name: 'kek with a slash', body: { kek: 'a/b', data: 1 }, field: 'kek' },
      { name: 'kek with spaces', body: { kek: 'a b', data: 1 }, field: 'kek' },
      { name: 'kek too long', body: { kek: 'k'.repeat(129), data: 1 }, field: 'kek' },
      { name: 'kek empty', body: { kek: '', data: 1 }, field: 'kek' },
    ])
    .run(async ({ client, assert }, { body, field }) => {
      const before = await rowCount()
      const response = await client.post('/entries').bearerToken(token).json(body)
      assertError(assert, response, 422, 'E_VALIDATION_ERROR')
      assert.includeDeepMembers(
        response.body().errors.map((e: any) => e.field),
        [field]
      )
      assert.equal(await rowCount(), before)
    })

  test('invalid PUT body → 422 E_VALIDATION_ERROR', async ({ client, assert }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 1 })
    const id = created.body().id
    for (const body of [{}, { data: null }]) {
      const response = await client.put(`/entries/${id}`).bearerToken(token).json(body)
      assertError(assert, response, 422, 'E_VALIDATION_ERROR')
    }
    const read = await client.get(`/entries/${id}`).bearerToken(token)
    assert.equal(read.body().data, 1)
  })

  test('invalid JSON or not an object → 400 E_INVALID_JSON without echoing the body', async ({
    assert,
  }) => {
    const marker = secretMarker('invalid-json')
    for (const body of [
      `{"kek": "x", "data": "${marker}"`,
      `{${marker}}`,
      `"${marker}"`,
      '42',
      `["${marker}"]`,
    ]) {
      const response = await fetch(url('/entries'), {
        method: 'POST',
        headers: { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      })
      const text = await response.text()
      assert.equal(response.status, 400, text)
      const parsed = JSON.parse(text)
      assert.equal(parsed.errors[0].code, 'E_INVALID_JSON')
      assert.isString(parsed.errors[0].message)
      assert.notInclude(text, marker)
    }
  })

  test('a body over 1 MB → 413 E_REQUEST_ENTITY_TOO_LARGE', async ({ assert }) => {
    const before = await rowCount()
    const body = JSON.stringify({ kek, data: 'y'.repeat(1024 * 1024 + 10) })
    const response = await fetch(url('/entries'), {
      method: 'POST',
      headers: { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    })
    const text = await response.text()
    assert.equal(response.status, 413, text)
    const parsed = JSON.parse(text)
    assert.equal(parsed.errors[0].code, 'E_REQUEST_ENTITY_TOO_LARGE')
    assert.isString(parsed.errors[0].message)
    assert.equal(await rowCount(), before)
  })

  test('GET /health/live needs no token', async ({ client }) => {
    const response = await client.get('/health/live')
    response.assertStatus(200)
    response.assertBody({ status: 'ok' })
  })

  test('unknown routes → 404 with a code', async ({ client, assert }) => {
    assertError(assert, await client.get('/nope'), 404, 'E_ROUTE_NOT_FOUND')
  })
})

test.group('entries / tampering (E_CIPHERTEXT_INVALID, never 500)', (group) => {
  const kek = kekName('tamper')
  const otherKek = kekName('tamper-other')
  let token: string
  group.setup(async () => {
    await createKek(kek)
    await createKek(otherKek)
    token = await entriesToken()
  })

  /** Creates an entry holding a secret marker; answers its id and the marker. */
  async function entry(client: any, tag: string): Promise<{ id: string; marker: string }> {
    const marker = secretMarker(tag)
    const response = await client
      .post('/entries')
      .bearerToken(token)
      .json({ kek, data: { marker } })
    response.assertStatus(201)
    return { id: response.body().id, marker }
  }

  async function assertRejected(client: any, assert: any, id: string, marker: string) {
    const response = await client.get(`/entries/${id}`).bearerToken(token)
    assertError(assert, response, 422, 'E_CIPHERTEXT_INVALID', [marker])
  }

  test('flipping a byte of the ciphertext in each region → 422', async ({ client, assert }) => {
    // format byte, nonce, payload, tag (last byte)
    for (const region of ['format', 'nonce', 'payload', 'tag']) {
      const { id, marker } = await entry(client, `tamper-${region}`)
      const offset = { format: 0, nonce: 5, payload: 14, tag: -1 }[region]!
      await db.rawQuery(
        `UPDATE vault_entries
            SET ciphertext = set_byte(ciphertext, o, get_byte(ciphertext, o) # 1)
           FROM (SELECT CASE WHEN ?::int < 0 THEN length(ciphertext) + ?::int ELSE ?::int END AS o
                   FROM vault_entries WHERE id = ?) AS p
          WHERE id = ?`,
        [offset, offset, offset, id, id]
      )
      await assertRejected(client, assert, id, marker)
    }
  })

  test('a truncated or emptied ciphertext → 422', async ({ client, assert }) => {
    for (const sql of [
      `UPDATE vault_entries SET ciphertext = substring(ciphertext FROM 1 FOR length(ciphertext) - 1) WHERE id = ?`,
      `UPDATE vault_entries SET ciphertext = substring(ciphertext FROM 1 FOR 10) WHERE id = ?`,
      `UPDATE vault_entries SET ciphertext = ''::bytea WHERE id = ?`,
    ]) {
      const { id, marker } = await entry(client, 'truncate')
      await db.rawQuery(sql, [id])
      await assertRejected(client, assert, id, marker)
    }
  })

  test('a tampered wrapped DEK → 422', async ({ client, assert }) => {
    const { id, marker } = await entry(client, 'wrapped')
    const row = await rawRow(id)
    const prefix = 'vault:v1:'
    const body = row.wrapped_dek.slice(prefix.length)
    const flipped = (body[4] === 'A' ? 'B' : 'A') + ''
    const tampered = prefix + body.slice(0, 4) + flipped + body.slice(5)
    await db.from('vault_entries').where('id', id).update({ wrapped_dek: tampered })
    await assertRejected(client, assert, id, marker)
  })

  test('a wrapped DEK naming a version that does not exist → 422', async ({ client, assert }) => {
    const { id, marker } = await entry(client, 'wrapped-version')
    await db.rawQuery(
      `UPDATE vault_entries SET wrapped_dek = replace(wrapped_dek, 'vault:v1:', 'vault:v9:') WHERE id = ?`,
      [id]
    )
    await assertRejected(client, assert, id, marker)
  })

  test('a malformed wrapped DEK → 422', async ({ client, assert }) => {
    const { id, marker } = await entry(client, 'wrapped-malformed')
    await db.rawQuery(
      `UPDATE vault_entries SET wrapped_dek = 'vault:v1:not base64!' WHERE id = ?`,
      [id]
    )
    await assertRejected(client, assert, id, marker)
  })

  test('swapping ciphertexts between two rows → 422 for both (AAD binds the id)', async ({
    client,
    assert,
  }) => {
    const a = await entry(client, 'swap-ct-a')
    const b = await entry(client, 'swap-ct-b')
    await db.rawQuery(
      `UPDATE vault_entries v SET ciphertext = o.ciphertext
         FROM vault_entries o
        WHERE (v.id, o.id) IN ((?::bigint, ?::bigint), (?::bigint, ?::bigint))`,
      [a.id, b.id, b.id, a.id]
    )
    await assertRejected(client, assert, a.id, b.marker)
    await assertRejected(client, assert, b.id, a.marker)
  })

  test('swapping wrapped DEKs between two rows → 422 for both', async ({ client, assert }) => {
    const a = await entry(client, 'swap-dek-a')
    const b = await entry(client, 'swap-dek-b')
    await db.rawQuery(
      `UPDATE vault_entries v SET wrapped_dek = o.wrapped_dek
         FROM vault_entries o
        WHERE (v.id, o.id) IN ((?::bigint, ?::bigint), (?::bigint, ?::bigint))`,
      [a.id, b.id, b.id, a.id]
    )
    await assertRejected(client, assert, a.id, a.marker)
    await assertRejected(client, assert, b.id, b.marker)
  })

  test('swapping both ciphertext and wrapped DEK between rows → 422', async ({
    client,
    assert,
  }) => {
    const a = await entry(client, 'swap-both-a')
    const b = await entry(client, 'swap-both-b')
    await db.rawQuery(
      `UPDATE vault_entries v SET wrapped_dek = o.wrapped_dek, ciphertext = o.ciphertext
         FROM vault_entries o
        WHERE (v.id, o.id) IN ((?::bigint, ?::bigint), (?::bigint, ?::bigint))`,
      [a.id, b.id, b.id, a.id]
    )
    await assertRejected(client, assert, a.id, b.marker)
    await assertRejected(client, assert, b.id, a.marker)
  })

  test('relabelling a row to another KEK → 422', async ({ client, assert }) => {
    const { id, marker } = await entry(client, 'relabel')
    await db.from('vault_entries').where('id', id).update({ kek_name: otherKek })
    await assertRejected(client, assert, id, marker)
  })
})

test.group('entries / KEK rotation', (group) => {
  const kek = kekName('rotate')
  let token: string
  group.setup(async () => {
    await createKek(kek)
    token = await entriesToken()
  })

  test('after a rotate, new writes use the latest version; old rows still read', async ({
    client,
    assert,
  }) => {
    const old = await client.post('/entries').bearerToken(token).json({ kek, data: 'old' })
    assert.equal(old.body().kekVersion, 1)

    const driver = await realDriver(kek)
    const rotated = await driver.rotateKey(kek)
    assert.equal(rotated.latestVersion, 2)

    const fresh = await client.post('/entries').bearerToken(token).json({ kek, data: 'new' })
    fresh.assertStatus(201)
    assert.equal(fresh.body().kekVersion, 2)
    const freshRow = await rawRow(fresh.body().id)
    assert.match(freshRow.wrapped_dek, /^vault:v2:/)

    // The old row still reads (its DEK is still wrapped under v1).
    const readOld = await client.get(`/entries/${old.body().id}`).bearerToken(token)
    readOld.assertStatus(200)
    assert.equal(readOld.body().kekVersion, 1)
    assert.equal(readOld.body().data, 'old')

    // Rewriting it moves it to the latest version.
    const updated = await client
      .put(`/entries/${old.body().id}`)
      .bearerToken(token)
      .json({ data: 'old, rewritten' })
    assert.equal(updated.body().kekVersion, 2)
    const row = await rawRow(old.body().id)
    assert.equal(row.kek_version, 2)
    assert.match(row.wrapped_dek, /^vault:v2:/)

    await driver.rotateKey(kek)
    const third = await client.post('/entries').bearerToken(token).json({ kek, data: 3 })
    assert.equal(third.body().kekVersion, 3)
  })
})

test.group('entries / KMS unavailable → 503 E_KMS_UNAVAILABLE', (group) => {
  const kek = kekName('down')
  let token: string
  let restore: (() => void) | undefined
  group.setup(async () => {
    await createKek(kek)
    token = await entriesToken()
  })
  group.each.teardown(() => {
    restore?.()
    restore = undefined
  })

  test('POST fails with 503 and writes nothing', async ({ client, assert }) => {
    const before = await rowCount()
    const down = new DownDriver()
    restore = swapKms(down)
    const marker = secretMarker('kms-down-post')
    const response = await client
      .post('/entries')
      .bearerToken(token)
      .json({ kek, data: { marker } })
    assertError(assert, response, 503, 'E_KMS_UNAVAILABLE', [marker])
    assert.isAbove(down.calls, 0)
    assert.equal(await rowCount(), before)
  })

  test('GET of an uncached entry fails with 503; PUT fails and keeps the row', async ({
    client,
    assert,
  }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'kept' })
    const id = created.body().id
    const before = await rawRow(id)
    const cache = await app.container.make(DekCache)
    cache.forgetRow(id)

    restore = swapKms(new DownDriver())
    assertError(
      assert,
      await client.get(`/entries/${id}`).bearerToken(token),
      503,
      'E_KMS_UNAVAILABLE'
    )
    assertError(
      assert,
      await client.put(`/entries/${id}`).bearerToken(token).json({ data: 'lost?' }),
      503,
      'E_KMS_UNAVAILABLE'
    )
    restore()
    restore = undefined

    const after = await rawRow(id)
    assert.equal(after.wrapped_dek, before.wrapped_dek)
    const read = await client.get(`/entries/${id}`).bearerToken(token)
    assert.equal(read.body().data, 'kept')
  })

  test('a cached DEK still serves reads while the KMS is down', async ({ client, assert }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'cached' })
    const id = created.body().id
    restore = swapKms(new DownDriver())
    const response = await client.get(`/entries/${id}`).bearerToken(token)
    response.assertStatus(200)
    assert.equal(response.body().data, 'cached')
  })

  test('a Vault KMS on a closed port → 503 (real driver, no retries)', async ({
    client,
    assert,
  }) => {
    const port = await freePort()
    restore = swapKms(
      new VaultKmsDriver({
        endpoint: `http://127.0.0.1:${port}`,
        token: 'hvs.test-token-not-a-secret',
        timeoutMs: 2000,
        retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      })
    )
    const before = await rowCount()
    const response = await client.post('/entries').bearerToken(token).json({ kek, data: 1 })
    assertError(assert, response, 503, 'E_KMS_UNAVAILABLE', ['hvs.test-token'])
    assert.equal(await rowCount(), before)
  })
})
