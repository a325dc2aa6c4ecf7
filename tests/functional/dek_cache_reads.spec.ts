import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { DekCache } from '#services/dek_cache'
import { KekService } from '#services/kek_service'
import { entriesToken } from '#tests/helpers/auth'
import { secretMarker } from '#tests/helpers/secrets'
import { CountingDriver, realDriver, swapKms } from './support/kms_doubles.js'

/*
| The read path through the DEK cache, end to end: KMS unwrap calls are
| counted by a driver wrapping the real local one.
*/
test.group('entries / DEK cache on the read path', (group) => {
  const kek = `fn-cache-${randomBytes(3).toString('hex')}`
  let token: string
  let counting: CountingDriver
  let restore: () => void
  let cache: DekCache

  group.setup(async () => {
    const keks = await app.container.make(KekService)
    await keks.create(kek)
    token = await entriesToken()
    counting = new CountingDriver(await realDriver(kek))
    restore = swapKms(counting)
    cache = await app.container.make(DekCache)
    return () => restore()
  })

  function unwraps() {
    return counting.calls.unwrap ?? 0
  }

  test('repeated reads unwrap once, then hit the cache', async ({ client, assert }) => {
    const marker = secretMarker('cache-hit')
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: { marker } })
    const id = created.body().id
    cache.forgetRow(id)

    const start = unwraps()
    const hitsBefore = cache.stats().hits
    for (let i = 0; i < 5; i++) {
      const response = await client.get(`/entries/${id}`).bearerToken(token)
      response.assertStatus(200)
      assert.deepEqual(response.body().data, { marker })
    }
    assert.equal(unwraps() - start, 1)
    assert.equal(cache.stats().hits - hitsBefore, 4)
  })

  test('a fresh write seeds the cache: the first read needs no unwrap', async ({
    client,
    assert,
  }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'seeded' })
    const start = unwraps()
    const response = await client.get(`/entries/${created.body().id}`).bearerToken(token)
    assert.equal(response.body().data, 'seeded')
    assert.equal(unwraps(), start)
  })

  test('after an update the read is correct (never the old DEK)', async ({ client, assert }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'before' })
    const id = created.body().id
    await client.get(`/entries/${id}`).bearerToken(token)

    const updated = await client.put(`/entries/${id}`).bearerToken(token).json({ data: 'after' })
    updated.assertStatus(200)
    const start = unwraps()
    const response = await client.get(`/entries/${id}`).bearerToken(token)
    assert.equal(response.body().data, 'after')
    // The update seeded the new DEK: still no unwrap.
    assert.equal(unwraps(), start)
  })

  test('after a rewrap (new wrapped value, same DEK) the read misses and is correct', async ({
    client,
    assert,
  }) => {
    const marker = secretMarker('cache-rewrap')
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: { marker } })
    const id = created.body().id
    await client.get(`/entries/${id}`).bearerToken(token)

    // What a rotation does: rewrap under a new KEK version, swap the wrap in place.
    await counting.rotateKey(kek)
    const row = await db.from('vault_entries').where('id', id).first()
    const [result] = await counting.rewrap(kek, [row.wrapped_dek])
    assert.isTrue(result.ok)
    if (!result.ok) return
    await db
      .from('vault_entries')
      .where('id', id)
      .update({ wrapped_dek: result.wrapped, kek_version: result.version, rotated_at: new Date() })

    const start = unwraps()
    const response = await client.get(`/entries/${id}`).bearerToken(token)
    response.assertStatus(200)
    assert.deepEqual(response.body().data, { marker })
    assert.equal(response.body().kekVersion, result.version)
    assert.equal(unwraps() - start, 1)

    // And the new wrap is cached from now on.
    await client.get(`/entries/${id}`).bearerToken(token)
    assert.equal(unwraps() - start, 1)
  })

  test('a deleted entry leaves nothing in the cache', async ({ client, assert }) => {
    const created = await client.post('/entries').bearerToken(token).json({ kek, data: 'gone' })
    const id = created.body().id
    const size = cache.stats().size
    const response = await client.delete(`/entries/${id}`).bearerToken(token)
    response.assertStatus(204)
    assert.equal(cache.stats().size, size - 1)
  })
})
