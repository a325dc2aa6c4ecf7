import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { KmsManager } from '#kms/kms_manager'
import { createKek, kekName } from '#tests/helpers/rotation'
import {
  fastRetryDeps,
  freePort,
  startTransitServer,
  vaultDriverFor,
  type TransitFixture,
} from '#tests/helpers/transit'

/*
| Readiness round-trips every managed KEK (config rewrap.lifecycle.keks);
| the tests set that list to their own KEKs so that KEKs of other test
| files (some deliberately broken) do not decide the outcome.
*/

const LIFECYCLE_KEKS = 'rewrap.lifecycle.keks'

function manage(names: string[]) {
  app.config.set(
    LIFECYCLE_KEKS,
    names.map((name) => ({ name }))
  )
}

function useManager(manager: KmsManager) {
  app.container.swap(KmsManager, () => manager)
}

test.group('GET /health/ready', (group) => {
  let original: unknown
  group.setup(() => {
    original = app.config.get(LIFECYCLE_KEKS, undefined)
  })
  group.each.teardown(() => {
    app.config.set(LIFECYCLE_KEKS, original)
    app.container.restoreAll()
  })

  test('GET /health/live: 200 without a token', async ({ client }) => {
    const response = await client.get('/health/live')
    response.assertStatus(200)
    response.assertBody({ status: 'ok' })
  })

  test('200 without a token: database, KMS driver, a round trip per managed KEK', async ({
    client,
    assert,
  }) => {
    const a = kekName('fn-ready')
    const b = kekName('fn-ready')
    await createKek(a)
    await createKek(b)
    manage([a, b])

    const response = await client.get('/health/ready')
    response.assertStatus(200)
    const body = response.body()
    assert.deepEqual(Object.keys(body).sort(), ['checks', 'finishedAt', 'isHealthy', 'status'])
    assert.isTrue(body.isHealthy)
    assert.equal(body.status, 'ok')
    assert.deepEqual(
      body.checks.map((c: any) => [c.name, c.status]),
      [
        ['database', 'ok'],
        ['kms:local', 'ok'],
        [`kek:${a}`, 'ok'],
        [`kek:${b}`, 'ok'],
      ]
    )
    assert.include(body.checks[2].message, 'wrap, rewrap and unwrap permitted')
    for (const check of body.checks) {
      assert.deepEqual(Object.keys(check).sort(), [
        'finishedAt',
        'message',
        'meta',
        'name',
        'status',
      ])
      assert.isNumber(check.meta.ms)
    }
    assert.notMatch(response.text(), /vault:v[0-9]+:/)
  })

  test('503 when a managed KEK does not exist (E_KEK_NOT_FOUND)', async ({ client, assert }) => {
    const present = kekName('fn-ready')
    const missing = kekName('fn-ready-missing')
    await createKek(present)
    manage([present, missing])
    const response = await client.get('/health/ready')
    response.assertStatus(503)
    const body = response.body()
    assert.isFalse(body.isHealthy)
    assert.equal(body.status, 'error')
    const byName = Object.fromEntries(body.checks.map((c: any) => [c.name, c]))
    assert.equal(byName.database.status, 'ok')
    assert.equal(byName[`kek:${present}`].status, 'ok')
    assert.equal(byName[`kek:${missing}`].status, 'error')
    assert.include(byName[`kek:${missing}`].message, 'E_KEK_NOT_FOUND')
  })

  test('vault driver over HTTP (in-process transit server, as kms:serve runs it): 200; then the server stops → 503', async ({
    client,
    assert,
  }) => {
    const fixture: TransitFixture = await startTransitServer()
    let closed = false
    try {
      const { driver } = vaultDriverFor(fixture, {
        timeoutMs: 2_000,
        retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      })
      useManager(new KmsManager({ default: 'vault', drivers: { vault: () => driver } }))
      const kek = kekName('fn-ready-vault')
      await driver.createKey(kek)
      manage([kek])

      const up = await client.get('/health/ready')
      up.assertStatus(200)
      assert.deepEqual(
        up.body().checks.map((c: any) => [c.name, c.status]),
        [
          ['database', 'ok'],
          ['kms:vault', 'ok'],
          [`kek:${kek}`, 'ok'],
        ]
      )
      const calls = fixture.server.requestLog.map((e) => `${e.method} ${e.path}`)
      for (const op of ['encrypt', 'rewrap', 'decrypt']) {
        assert.include(calls, `POST /v1/transit/${op}/${kek}`)
      }

      await fixture.close()
      closed = true
      const down = await client.get('/health/ready')
      down.assertStatus(503)
      assert.notInclude(down.text(), fixture.token)
      const byName = Object.fromEntries(down.body().checks.map((c: any) => [c.name, c]))
      assert.equal(byName.database.status, 'ok')
      assert.equal(byName['kms:vault'].status, 'error')
      assert.include(byName['kms:vault'].message, 'E_KMS_UNAVAILABLE')
      assert.equal(byName[`kek:${kek}`].status, 'error')
    } finally {
      if (!closed) await fixture.close()
    }
  })

  test('503 when the KMS is down (vault driver pointing at a closed port)', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-ready-down')
    await createKek(kek)
    manage([kek])
    const port = await freePort()
    const token = `test-${kek}-not-a-real-token`
    const { driver } = vaultDriverFor(
      { url: `http://127.0.0.1:${port}`, token },
      {
        timeoutMs: 1_000,
        retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
        retryDeps: fastRetryDeps(),
      }
    )
    useManager(new KmsManager({ default: 'vault', drivers: { vault: () => driver } }))

    const response = await client.get('/health/ready')
    response.assertStatus(503)
    const body = response.body()
    assert.isFalse(body.isHealthy)
    assert.equal(body.status, 'error')
    assert.deepEqual(
      body.checks.map((c: any) => [c.name, c.status]),
      [
        ['database', 'ok'],
        ['kms:vault', 'error'],
        [`kek:${kek}`, 'error'],
      ]
    )
    assert.include(body.checks[1].message, 'E_KMS_UNAVAILABLE')
    assert.notInclude(response.text(), token)
    assert.notInclude(response.text(), 'stack')
    assert.notProperty(body, 'debugInfo')
  })
})
