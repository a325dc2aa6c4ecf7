import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { kmsError } from '#kms/error_codes'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { manageKeks } from '#tests/helpers/kek_policies'
import { ReadinessCache } from '#services/health_service'
import { createToken } from '#tests/helpers/auth'
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

async function clearProbe() {
  const cache = await app.container.make(ReadinessCache)
  cache.clear()
}

function useManager(manager: KmsManager) {
  app.container.swap(KmsManager, () => manager)
}

test.group('GET /health/ready', (group) => {
  let token: string
  group.setup(async () => {
    token = await createToken(['rotation:read'])
  })
  group.each.setup(() => clearProbe())
  group.each.teardown(() => {
    app.container.restoreAll()
  })

  test('GET /health/live: 200 without a token', async ({ client }) => {
    const response = await client.get('/health/live')
    response.assertStatus(200)
    response.assertBody({ status: 'ok' })
  })

  test('200 with a rotation:read token: database, KMS driver, a round trip per managed KEK', async ({
    client,
    assert,
  }) => {
    const a = kekName('fn-ready')
    const b = kekName('fn-ready')
    await createKek(a)
    await createKek(b)
    manageKeks(a, b)

    const response = await client.get('/health/ready').bearerToken(token)
    response.assertStatus(200)
    const body = response.body()
    assert.deepEqual(Object.keys(body).sort(), [
      'checks',
      'finishedAt',
      'governance',
      'isHealthy',
      'status',
    ])
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
    manageKeks(present, missing)
    const response = await client.get('/health/ready').bearerToken(token)
    response.assertStatus(503)
    const body = response.body()
    assert.isFalse(body.isHealthy)
    assert.equal(body.status, 'error')
    const byName = Object.fromEntries(body.checks.map((c: any) => [c.name, c]))
    assert.equal(byName.database.status, 'ok')
    assert.equal(byName[`kek:${present}`].status, 'ok')
    assert.equal(byName[`kek:${missing}`].status, 'error')
    assert.equal(
      byName[`kek:${missing}`].message,
      `KEK "${missing}": E_KEK_NOT_FOUND: KEK "${missing}" does not exist`
    )
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
      manageKeks(kek)

      const up = await client.get('/health/ready').bearerToken(token)
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
      await clearProbe()
      const down = await client.get('/health/ready').bearerToken(token)
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
    manageKeks(kek)
    const port = await freePort()
    const vaultToken = `test-${kek}-not-a-real-token`
    const { driver } = vaultDriverFor(
      { url: `http://127.0.0.1:${port}`, token: vaultToken },
      {
        timeoutMs: 1_000,
        retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
        retryDeps: fastRetryDeps(),
      }
    )
    useManager(new KmsManager({ default: 'vault', drivers: { vault: () => driver } }))

    const response = await client.get('/health/ready').bearerToken(token)
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
    assert.notInclude(response.text(), vaultToken)
    assert.notInclude(response.text(), 'stack')
    assert.notProperty(body, 'debugInfo')
  })
  test('anonymous: only the overall status, 200 {status: ok} or 503 {status: error}', async ({
    client,
    assert,
  }) => {
    const present = kekName('fn-anon')
    const missing = kekName('fn-anon-missing')
    await createKek(present)
    manageKeks(present)
    const up = await client.get('/health/ready')
    up.assertStatus(200)
    assert.deepEqual(up.body(), { status: 'ok' })

    manageKeks(present, missing)
    await clearProbe()
    const down = await client.get('/health/ready')
    down.assertStatus(503)
    assert.deepEqual(down.body(), { status: 'error' })
    for (const leak of [present, missing, 'kms:', 'database', 'ms']) {
      assert.notInclude(down.text(), leak)
    }
  })

  test('a token without rotation:read: 403; an invalid token: 401', async ({ client }) => {
    const entriesOnly = await createToken(['entries:read'])
    const forbidden = await client.get('/health/ready').bearerToken(entriesOnly)
    forbidden.assertStatus(403)
    forbidden.assertBodyContains({ errors: [{ code: 'E_FORBIDDEN' }] })
    const invalid = await client.get('/health/ready').bearerToken('rwp_not-a-token')
    invalid.assertStatus(401)
  })

  test('a KMS error text never reaches the report: a fixed message per code', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-ready-text')
    await createKek(kek)
    manageKeks(kek)
    const real = await app.container.make(KmsManager)
    const inner = await real.forKek(kek)
    const leaky = 'nope: permission denied for user vaultadmin on db-internal.example:5432'
    const driver = new Proxy(inner, {
      get(target, prop) {
        if (prop === 'wrap')
          return async () => Promise.reject(kmsError('E_KMS_REJECTED', leaky, kek))
        const value = (target as any)[prop]
        return typeof value === 'function' ? value.bind(target) : value
      },
    }) as KmsDriver
    useManager(new KmsManager({ default: 'double', drivers: { double: () => driver } }))
    const response = await client.get('/health/ready').bearerToken(token)
    response.assertStatus(503)
    const check = response.body().checks.find((c: any) => c.name === `kek:${kek}`)
    assert.equal(check.message, `KEK "${kek}": E_KMS_REJECTED: The KMS rejected the request`)
    for (const part of ['nope', 'vaultadmin', 'db-internal']) {
      assert.notInclude(response.text(), part)
    }
  })

  test('16 concurrent calls run ONE probe (KMS calls counted at the transit server); cached for cacheMs', async ({
    client,
    assert,
  }) => {
    const fixture: TransitFixture = await startTransitServer()
    try {
      const { driver } = vaultDriverFor(fixture)
      useManager(new KmsManager({ default: 'vault', drivers: { vault: () => driver } }))
      const kek = kekName('fn-ready-burst')
      await driver.createKey(kek)
      manageKeks(kek)
      const probes = () =>
        fixture.server.requestLog.filter((e) => e.path === `/v1/transit/encrypt/${kek}`).length

      const burst = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          i % 2 === 0 ? client.get('/health/ready') : client.get('/health/ready').bearerToken(token)
        )
      )
      for (const response of burst) response.assertStatus(200)
      assert.equal(probes(), 1)
      assert.equal(
        fixture.server.requestLog.filter((e) => e.path === `/v1/transit/decrypt/${kek}`).length,
        1
      )

      const again = await client.get('/health/ready')
      again.assertStatus(200)
      assert.equal(probes(), 1, 'answered from the cached probe')

      app.config.set('rewrap.health.cacheMs', 0)
      try {
        await client.get('/health/ready')
        assert.equal(probes(), 2, 'cacheMs 0: every call probes')
      } finally {
        app.config.set('rewrap.health.cacheMs', 5000)
      }
    } finally {
      await fixture.close()
    }
  })
})
