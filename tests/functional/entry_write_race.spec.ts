/*
|--------------------------------------------------------------------------
| PUT racing a background move (re-encrypt, rotation)
|--------------------------------------------------------------------------
|
| The exact interleaving "PUT reads the row → a move commits → PUT writes",
| made deterministic by a gate in the PUT's KMS client: the EntryService
| of the HTTP server gets a KmsManager whose generateDataKey holds the
| first data key until the test has run the move to completion. Every KMS
| call still goes to the real driver.
|
*/
import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { DekCache } from '#services/dek_cache'
import { EntryService, UPDATE_ATTEMPTS } from '#services/entry_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { RowVerifier } from '#services/row_verifier'
import { ReencryptService } from '#services/reencrypt_service'
import { wrappedDekVersion } from '#crypto/wrapped_dek'
import { entriesToken } from '#tests/helpers/auth'
import { createKek, latestVersion } from '#tests/helpers/rotation'

const run = randomBytes(3).toString('hex')
let n = 0
const kekName = (tag: string) => `fn-race-${tag}-${run}-${n++}`

/**
 * Runs `onDataKey` after each data key the PUT's KMS client obtains and
 * before the PUT continues (the seam between the PUT's read and its write).
 */
async function gatePut(onDataKey: (call: number) => Promise<void>) {
  const real = await app.container.make(KmsManager)
  let calls = 0
  const gatedDriver = (driver: KmsDriver): KmsDriver =>
    new Proxy(driver, {
      get(target, prop) {
        if (prop === 'generateDataKey') {
          return async (name: string) => {
            const key = await target.generateDataKey(name)
            await onDataKey(++calls)
            return key
          }
        }
        const value = (target as any)[prop]
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  const gated = new Proxy(real, {
    get(target, prop) {
      if (prop === 'forKek') {
        return async (name: string) => gatedDriver(await target.forKek(name))
      }
      const value = (target as any)[prop]
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  const cache = await app.container.make(DekCache)
  app.container.swap(EntryService, () => new EntryService(gated, cache))
  return {
    get calls() {
      return calls
    },
  }
}

async function rowOf(id: string) {
  return db.from('vault_entries').where('id', id).first()
}

/** kek_version matches the wrapped DEK's `vault:vN:` prefix. */
function assertConsistent(assert: any, row: any) {
  assert.equal(row.kek_version, wrappedDekVersion(row.wrapped_dek))
}

test.group('entries / PUT racing a background move', (group) => {
  let token: string
  group.setup(async () => {
    token = await entriesToken()
  })
  group.each.teardown(() => app.container.restore(EntryService))

  test('PUT reads → reencrypt A→B commits → PUT writes: the PUT lands under B and decrypts', async ({
    client,
    assert,
  }) => {
    const from = kekName('a')
    const to = kekName('b')
    await createKek(from)
    await createKek(to)
    const created = await client.post('/entries').bearerToken(token).json({ kek: from, data: 1 })
    created.assertStatus(201)
    const id = created.body().id

    let moved: Awaited<ReturnType<ReencryptService['reencrypt']>> | undefined
    const gate = await gatePut(async (call) => {
      if (call !== 1) return
      const reencrypt = await app.container.make(ReencryptService)
      moved = await reencrypt.reencrypt(from, to)
    })
    const put = await client.put(`/entries/${id}`).bearerToken(token).json({ data: 'after' })
    put.assertStatus(200)
    assert.equal(moved?.status, 'completed')
    assert.equal(moved?.reencrypted, 1)
    const row = await rowOf(id)
    assert.equal(row.kek_name, to)
    assertConsistent(assert, row)
    const [{ count }] = await db.from('vault_entries').where('kek_name', from).count('* as count')
    assert.equal(Number(count), 0)

    app.container.restore(EntryService)
    const cache = await app.container.make(DekCache)
    cache.clear()
    const got = await client.get(`/entries/${id}`).bearerToken(token)
    got.assertStatus(200)
    assert.equal(got.body().data, 'after')
    assert.equal(got.body().kekName, to)

    const verifier = await app.container.make(RowVerifier)
    const verify = await verifier.verify(to)
    assert.isTrue(verify.ok, JSON.stringify(verify))
    assert.equal(verify.checked, 1)
    assert.equal(put.body().kekName, to)
    assert.equal(gate.calls, 2, 'the PUT retried once, under the KEK the row has now')
  })

  test('PUT reads → rotation to v2 commits → PUT writes: the PUT lands at v2 and the KEK has no stale row', async ({
    client,
    assert,
  }) => {
    const kek = kekName('r')
    await createKek(kek)
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 1 })
    const id = created.body().id

    const gate = await gatePut(async (call) => {
      if (call !== 1) return
      const rotations = await app.container.make(KeyRotationService)
      const done = await rotations.rotate(kek)
      assert.equal(done.status, 'completed')
      assert.equal(done.rewrapped, 1)
    })
    const put = await client.put(`/entries/${id}`).bearerToken(token).json({ data: 'after' })
    put.assertStatus(200)
    assert.equal(await latestVersion(kek), 2)
    const row = await rowOf(id)
    assert.equal(row.kek_name, kek)
    assert.equal(
      row.kek_version,
      2,
      'the PUT must not leave the row below the version the rotation finished at'
    )
    assertConsistent(assert, row)
    assert.equal(put.body().kekVersion, 2)
    assert.equal(gate.calls, 2)

    app.container.restore(EntryService)
    const cache = await app.container.make(DekCache)
    cache.clear()
    const got = await client.get(`/entries/${id}`).bearerToken(token)
    got.assertStatus(200)
    assert.equal(got.body().data, 'after')
  })

  test('a PUT that loses every compare-and-swap answers 409 E_ENTRY_CONFLICT and writes nothing', async ({
    client,
    assert,
  }) => {
    const kek = kekName('c')
    await createKek(kek)
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'kept' })
    const id = created.body().id

    const gate = await gatePut(async () => {
      const rotations = await app.container.make(KeyRotationService)
      await rotations.rotate(kek)
    })
    const put = await client.put(`/entries/${id}`).bearerToken(token).json({ data: 'lost' })
    put.assertStatus(409)
    assert.equal(put.body().errors[0].code, 'E_ENTRY_CONFLICT')
    assert.equal(gate.calls, UPDATE_ATTEMPTS)

    const row = await rowOf(id)
    assert.equal(row.kek_version, UPDATE_ATTEMPTS + 1)
    assertConsistent(assert, row)
    app.container.restore(EntryService)
    const got = await client.get(`/entries/${id}`).bearerToken(token)
    got.assertStatus(200)
    assert.equal(got.body().data, 'kept')
  })
})
