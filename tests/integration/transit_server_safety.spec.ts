/*
|--------------------------------------------------------------------------
| Transit server safety: batch cap, yielding, token strength, Bearer,
| failed-authentication throttle
|--------------------------------------------------------------------------
|
| Real HTTP against the in-process server of `kms:serve`. The throttle's
| clock is injected: no sleeps.
|
*/
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { test } from '@japa/runner'
import { AuthThrottle } from '#kms/transit_server/auth_throttle'
import { BATCH_CHUNK_ITEMS, MAX_BATCH_ITEMS } from '#kms/transit_server/batch'
import { MIN_TOKEN_LENGTH } from '#kms/transit_server/token'
import { randomId, startTransitServer, type TransitFixture } from '#tests/helpers/transit'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  json: any
}

/** One request over node:http (so the local address can be chosen). */
function call(
  fixture: TransitFixture,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; localAddress?: string } = {}
): Promise<Answer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
  const headers: Record<string, string> = { ...options.headers }
  if (payload !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(payload))
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${fixture.url}${path}`, {
      method,
      headers,
      localAddress: options.localAddress,
    })
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          json: text ? JSON.parse(text) : undefined,
        })
      )
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** The status of one request. */
async function statusOf(...args: Parameters<typeof call>): Promise<number> {
  const answer = await call(...args)
  return answer.status
}

const vaultToken = (fixture: TransitFixture, token = fixture.token) => ({ 'x-vault-token': token })

test.group('transit server: batch_input cap', (group) => {
  let fixture: TransitFixture
  group.setup(async () => {
    fixture = await startTransitServer()
    return () => fixture.close()
  })

  test('more than MAX_BATCH_ITEMS items is a Vault-style 400 for encrypt, decrypt and rewrap', async ({
    assert,
  }) => {
    assert.equal(MAX_BATCH_ITEMS, 10_000)
    const name = `cap-${randomId()}`
    const created = await call(fixture, 'POST', `/v1/transit/keys/${name}`, {
      headers: vaultToken(fixture),
      body: {},
    })
    assert.equal(created.status, 200)
    const over = Array.from({ length: MAX_BATCH_ITEMS + 1 }, () => ({}))
    for (const op of ['encrypt', 'decrypt', 'rewrap']) {
      const res = await call(fixture, 'POST', `/v1/transit/${op}/${name}`, {
        headers: vaultToken(fixture),
        body: { batch_input: over },
      })
      assert.equal(res.status, 400, op)
      assert.deepEqual(res.json, {
        errors: [
          `batch_input has ${MAX_BATCH_ITEMS + 1} items; this server accepts at most ${MAX_BATCH_ITEMS} per request`,
        ],
      })
    }
  })

  test('exactly MAX_BATCH_ITEMS items are processed, each with its result', async ({ assert }) => {
    const name = `cap-${randomId()}`
    const plaintexts = Array.from({ length: MAX_BATCH_ITEMS }, () =>
      randomBytes(32).toString('base64')
    )
    const encrypted = await call(fixture, 'POST', `/v1/transit/encrypt/${name}`, {
      headers: vaultToken(fixture),
      body: { batch_input: plaintexts.map((plaintext) => ({ plaintext })) },
    })
    assert.equal(encrypted.status, 200)
    const results = encrypted.json.data.batch_results as Array<{ ciphertext: string }>
    assert.lengthOf(results, MAX_BATCH_ITEMS)
    const decrypted = await call(fixture, 'POST', `/v1/transit/decrypt/${name}`, {
      headers: vaultToken(fixture),
      body: { batch_input: results.map((r) => ({ ciphertext: r.ciphertext })) },
    })
    assert.equal(decrypted.status, 200)
    assert.deepEqual(
      decrypted.json.data.batch_results.map((r: { plaintext: string }) => r.plaintext),
      plaintexts
    )
  })

  test('a large batch yields to the event loop between chunks of items', async ({
    assert,
    cleanup,
  }) => {
    // The server runs in this process: an immediate that re-queues itself counts the turns of
    // the event loop, and the injected random source reads the count at every nonce it draws.
    let turns = 0
    let ticking = true
    const tick = () => {
      turns++
      if (ticking) setImmediate(tick)
    }
    setImmediate(tick)
    cleanup(() => {
      ticking = false
    })
    const turnsAtNonce: number[] = []
    const yielding = await startTransitServer({
      random: (size: number) => {
        if (size === 12) turnsAtNonce.push(turns)
        return randomBytes(size)
      },
    })
    cleanup(() => yielding.close())
    const items = MAX_BATCH_ITEMS
    const res = await call(yielding, 'POST', `/v1/transit/encrypt/yield-${randomId()}`, {
      headers: vaultToken(yielding),
      body: {
        batch_input: Array.from({ length: items }, () => ({
          plaintext: randomBytes(32).toString('base64'),
        })),
      },
    })
    ticking = false
    assert.equal(res.status, 200)
    assert.isAtLeast(turnsAtNonce.length, items)
    // Processed in one go, every nonce would see the same count.
    const distinct = new Set(turnsAtNonce).size
    assert.isAtLeast(distinct, items / BATCH_CHUNK_ITEMS / 2)
  })
})

test.group('transit server: token', () => {
  test(`a token shorter than ${MIN_TOKEN_LENGTH} characters is refused at construction`, async ({
    assert,
  }) => {
    try {
      await startTransitServer({ token: 'x'.repeat(MIN_TOKEN_LENGTH - 1) })
      assert.fail('a short token was accepted')
    } catch (error) {
      assert.equal((error as any).code, 'E_KMS_CONFIG')
      assert.include((error as Error).message, `at least ${MIN_TOKEN_LENGTH}`)
      assert.notInclude((error as Error).message, 'x'.repeat(MIN_TOKEN_LENGTH - 1))
    }
    const fixture = await startTransitServer({ token: 'y'.repeat(MIN_TOKEN_LENGTH) })
    await fixture.close()
  })

  test('Authorization: Bearer is accepted beside X-Vault-Token', async ({ assert, cleanup }) => {
    const fixture = await startTransitServer()
    cleanup(() => fixture.close())
    const name = `bearer-${randomId()}`
    const created = await call(fixture, 'POST', `/v1/transit/keys/${name}`, {
      headers: { authorization: `Bearer ${fixture.token}` },
      body: {},
    })
    assert.equal(created.status, 200)
    const read = await call(fixture, 'GET', `/v1/transit/keys/${name}`, {
      headers: { authorization: `bearer ${fixture.token}` },
    })
    assert.equal(read.status, 200)
    assert.equal(read.json.data.name, name)
    for (const authorization of ['Bearer wrong-token', `Basic ${fixture.token}`, fixture.token]) {
      const denied = await call(fixture, 'GET', `/v1/transit/keys/${name}`, {
        headers: { authorization },
      })
      assert.equal(denied.status, 403, authorization.slice(0, 6))
      assert.deepEqual(denied.json, { errors: ['permission denied'] })
    }
    // X-Vault-Token wins when both are sent, as in Vault.
    const both = await call(fixture, 'GET', `/v1/transit/keys/${name}`, {
      headers: { 'x-vault-token': 'wrong-token', 'authorization': `Bearer ${fixture.token}` },
    })
    assert.equal(both.status, 403)
  })
})

test.group('transit server: failed-authentication throttle', () => {
  test('after N failures an address is answered 429 for the window, even with the right token', async ({
    assert,
    cleanup,
  }) => {
    let now = 1_000_000
    const fixture = await startTransitServer({
      authThrottle: { maxFailures: 3, windowMs: 60_000, clock: () => now },
    })
    cleanup(() => fixture.close())
    const path = `/v1/transit/keys/throttle-${randomId()}`
    const wrong = { 'x-vault-token': 'wrong-token' }

    for (let i = 0; i < 3; i++) {
      assert.equal(await statusOf(fixture, 'GET', path, { headers: wrong }), 403)
    }
    const locked = await call(fixture, 'GET', path, { headers: vaultToken(fixture) })
    assert.equal(locked.status, 429)
    assert.deepEqual(locked.json, {
      errors: ['too many failed authentication attempts; retry later'],
    })
    assert.equal(locked.headers['retry-after'], '60')
    now += 30_000
    const later = await call(fixture, 'GET', path, { headers: wrong })
    assert.equal(later.status, 429)
    assert.equal(later.headers['retry-after'], '30')

    // Another address is not affected (127.0.0.2 is loopback on Linux).
    const other = await call(fixture, 'GET', path, {
      headers: vaultToken(fixture),
      localAddress: '127.0.0.2',
    })
    assert.equal(other.status, 404)
    // Health needs no token and stays open.
    assert.equal(await statusOf(fixture, 'GET', '/v1/sys/health'), 200)

    now += 30_000
    assert.equal(await statusOf(fixture, 'GET', path, { headers: vaultToken(fixture) }), 404)
    assert.deepEqual(
      fixture.server.requestLog.filter((r) => r.path === path).map((r) => r.status),
      [403, 403, 403, 429, 429, 404, 404]
    )
  })

  test('failures spread over more than the window do not lock out', async ({ assert, cleanup }) => {
    let now = 5_000_000
    const fixture = await startTransitServer({
      authThrottle: { maxFailures: 3, windowMs: 60_000, clock: () => now },
    })
    cleanup(() => fixture.close())
    const path = `/v1/transit/keys/spread-${randomId()}`
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) {
      statuses.push(await statusOf(fixture, 'GET', path, { headers: {} }))
      if (i % 2 === 1) now += 60_000
    }
    assert.deepEqual(statuses, [403, 403, 403, 403, 403, 403])
  })

  test('the throttle tracks a bounded number of addresses', ({ assert }) => {
    const throttle = new AuthThrottle({ maxFailures: 2, maxAddresses: 3, clock: () => 0 })
    for (let i = 0; i < 100; i++) throttle.recordFailure(`10.0.0.${i}`)
    assert.equal(throttle.trackedAddresses, 3)
    throttle.recordFailure('10.0.0.99')
    assert.throws(() => throttle.assertAllowed('10.0.0.99'))
    assert.doesNotThrow(() => throttle.assertAllowed('10.0.0.0'))
  })
})
