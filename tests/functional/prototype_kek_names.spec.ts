import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { KmsManager } from '#kms/kms_manager'
import { createToken, entriesToken } from '#tests/helpers/auth'
import { realDriver } from './support/kms_doubles.js'

/*
| KEK names that are also Object.prototype members (`constructor`,
| `toString`, …) must be plain names everywhere a name picks something: with
| a per-KEK driver map (config/kms.ts `keks`) such a name once found
| `Object.prototype.constructor` and answered 500.
*/

/** Valid KEK names that are members of every plain object. */
const PROTOTYPE_NAMES = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf']

/** A manager with two drivers and a per-KEK map, as config/kms.ts `keks` gives. */
async function perKekManager(mappedKek: string) {
  const local = await realDriver(mappedKek)
  return new KmsManager({
    default: 'local',
    drivers: { local: () => local, other: () => local },
    keks: { [mappedKek]: 'other' },
  })
}

test.group('KEK names that are Object.prototype members', (group) => {
  const mapped = `fn-proto-${randomBytes(3).toString('hex')}`
  let entries: string
  let reader: string
  let manager: KmsManager

  group.setup(async () => {
    entries = await entriesToken()
    reader = await createToken(['rotation:read'])
    manager = await perKekManager(mapped)
    app.container.swap(KmsManager, () => manager)
    return () => app.container.restore(KmsManager)
  })

  test('the manager maps them to the default driver, never to a prototype member', async ({
    assert,
  }) => {
    const local = await manager.use('local')
    for (const name of [...PROTOTYPE_NAMES, '__proto__']) {
      assert.equal(manager.driverNameFor(name), 'local', name)
      assert.strictEqual(await manager.forKek(name), local, name)
      assert.isUndefined(manager.config.keks?.[name], name)
      assert.throws(() => manager.use(name), `KMS misconfigured: unknown KMS driver "${name}"`)
    }
    assert.equal(manager.driverNameFor(mapped), 'other')
  })

  test('POST /entries with such a KEK that does not exist: 404 E_KEK_NOT_FOUND, not 500', async ({
    client,
    assert,
  }) => {
    for (const kek of PROTOTYPE_NAMES) {
      const response = await client.post('/entries').bearerToken(entries).json({ kek, data: 'x' })
      assert.equal(response.status(), 404, `${kek}: ${response.text()}`)
      assert.equal(response.body().errors[0].code, 'E_KEK_NOT_FOUND')
      assert.equal(response.body().errors[0].message, `KEK "${kek}" does not exist`)
    }
    const proto = await client
      .post('/entries')
      .bearerToken(entries)
      .json({ kek: '__proto__', data: 'x' })
    assert.equal(proto.status(), 422, proto.text())
    assert.equal(proto.body().errors[0].code, 'E_VALIDATION_ERROR')
  })

  test('GET /rotations/status and /rotations answer 200 for them', async ({ client, assert }) => {
    for (const kek of PROTOTYPE_NAMES) {
      const status = await client.get('/rotations/status').qs({ kek }).bearerToken(reader)
      assert.equal(status.status(), 200, `${kek}: ${status.text()}`)
      // A KEK unknown to the KMS, rows and runs is not reported (as any other name).
      assert.deepEqual(status.body().keks, [], kek)

      const runs = await client.get('/rotations').qs({ kek }).bearerToken(reader)
      assert.equal(runs.status(), 200, `${kek}: ${runs.text()}`)
    }
  })

  test('a KEK named "constructor" stores and reads entries (default driver)', async ({
    client,
    assert,
  }) => {
    const kek = 'constructor'
    try {
      await manager.forKek(kek).then((driver) => driver.createKey(kek))
      const created = await client
        .post('/entries')
        .bearerToken(entries)
        .json({ kek, data: { n: 1 } })
      assert.equal(created.status(), 201, created.text())
      assert.equal(created.body().kekName, kek)
      const read = await client.get(`/entries/${created.body().id}`).bearerToken(entries)
      assert.equal(read.status(), 200, read.text())
      assert.deepEqual(read.body().data, { n: 1 })

      const status = await client.get('/rotations/status').qs({ kek }).bearerToken(reader)
      assert.equal(status.status(), 200, status.text())
      const [report] = status.body().keks
      assert.equal(report.name, kek)
      assert.isTrue(report.exists)
      assert.isNull(report.kmsError)
    } finally {
      await db.from('vault_entries').where('kek_name', kek).delete()
      await db.from('kms_keys').where('name', kek).delete()
    }
  })
})
