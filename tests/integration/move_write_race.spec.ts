/*
|--------------------------------------------------------------------------
| A background move racing a write (the other order)
|--------------------------------------------------------------------------
|
| "move reads the batch → PUT commits → move writes": the move's KMS call
| for the batch (rotation: rewrap; re-encrypt: wrap of the fresh DEKs) runs
| the PUT to completion before it returns, so the move's compare-and-swap
| meets a row it did not read. Deterministic: a gate in the container's
| KmsManager; every KMS call still goes to the real driver.
|
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { wrappedDekVersion } from '#crypto/wrapped_dek'
import { DekCache } from '#services/dek_cache'
import { EntryService } from '#services/entry_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { ReencryptService } from '#services/reencrypt_service'
import { RowVerifier } from '#services/row_verifier'
import { createKek, kekName, seed } from '#tests/helpers/rotation'

/** Runs `during` inside the first call of `method` (after the real call answered). */
async function gateKms(method: 'rewrap' | 'wrap', during: () => Promise<void>) {
  const real = await app.container.make(KmsManager)
  let fired = false
  const gated = (driver: KmsDriver): KmsDriver =>
    new Proxy(driver, {
      get(target, prop) {
        const value = (target as any)[prop]
        if (prop !== method) return typeof value === 'function' ? value.bind(target) : value
        return async (...args: unknown[]) => {
          const result = await value.apply(target, args)
          if (!fired) {
            fired = true
            await during()
          }
          return result
        }
      },
    })
  const manager = new Proxy(real, {
    get(target, prop) {
      if (prop === 'forKek') return async (name: string) => gated(await target.forKek(name))
      const value = (target as any)[prop]
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  app.container.swap(KmsManager, () => manager)
  return () => fired
}

/** A PUT, as the HTTP route does it (the gate has fired: its calls pass straight through). */
async function put(id: string, data: unknown) {
  const entries = new EntryService(
    await app.container.make(KmsManager),
    await app.container.make(DekCache)
  )
  return entries.update(id, data)
}

async function read(id: string) {
  app.container.restore(KmsManager)
  const cache = await app.container.make(DekCache)
  cache.clear()
  const entries = await app.container.make(EntryService)
  return entries.find(id)
}

test.group('background move racing a PUT', (group) => {
  group.each.teardown(() => app.container.restore(KmsManager))

  test('rotation reads → PUT (same KEK, latest version) commits → rotation writes: the PUT wins, the row is skipped', async ({
    assert,
  }) => {
    const kek = kekName('mr')
    await createKek(kek)
    const seeded = await seed(kek, 1)
    const [id] = [...seeded.keys()]
    const fired = await gateKms('rewrap', async () => {
      const ref = await put(id, { after: true })
      assert.equal(ref.kekVersion, 2, 'the PUT wraps under the version Step A just made')
    })
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek)
    assert.isTrue(fired())
    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 0)
    assert.equal(run.skipped, 1)

    const row = await db.from('vault_entries').where('id', id).first()
    assert.equal(row.kek_version, 2)
    assert.equal(wrappedDekVersion(row.wrapped_dek), 2)
    const entry = await read(id)
    assert.deepEqual(entry.data, { after: true })
  })

  test('reencrypt reads → PUT commits under A → reencrypt writes: the PUT wins, the next pass moves it to B', async ({
    assert,
  }) => {
    const from = kekName('ma')
    const to = kekName('mb')
    await createKek(from)
    await createKek(to)
    const seeded = await seed(from, 1)
    const [id] = [...seeded.keys()]
    const fired = await gateKms('wrap', async () => {
      const ref = await put(id, { after: true })
      assert.equal(ref.kekName, from)
    })
    const reencrypt = await app.container.make(ReencryptService)
    const run = await reencrypt.reencrypt(from, to)
    assert.isTrue(fired())
    assert.equal(run.status, 'completed')
    assert.equal(run.skipped, 1, 'the first pass lost its compare-and-swap')
    assert.equal(run.reencrypted, 1, 'the second pass moved the rewritten row')

    const row = await db.from('vault_entries').where('id', id).first()
    assert.equal(row.kek_name, to)
    const entry = await read(id)
    assert.deepEqual(entry.data, { after: true })
    const verifier = await app.container.make(RowVerifier)
    const report = await verifier.verify(to)
    assert.isTrue(report.ok)
  })
})
