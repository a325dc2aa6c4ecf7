/*
|--------------------------------------------------------------------------
| azure-keyvault driver over HTTPS: challenge, retries, denial, exactly-once
| create, and the stand-in's wire shapes
|--------------------------------------------------------------------------
|
| The real @azure/keyvault-keys client against the in-process Key Vault
| stand-in (a test CA, the bearer challenge). The contract itself runs in
| kms_contract.spec.ts.
|
*/
import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import { azureDriverFor, startAzureServer, type AzureFixture } from '#tests/helpers/azure'
import { randomId } from '#tests/helpers/transit'

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise
  } catch (error) {
    if ((error as any)?.code !== code) {
      throw new Error(`expected ${code}, got ${(error as any)?.code}: ${(error as Error).message}`)
    }
    return error as Error
  }
  throw new Error(`expected ${code}, but the call succeeded`)
}

test.group('azure-keyvault: transport', (group) => {
  let fixture: AzureFixture
  const kek = (label: string) => `az-${label}-${randomId()}`
  const since = (mark: number) => fixture.server.requestLog.slice(mark)

  group.setup(async () => {
    fixture = await startAzureServer()
    return () => fixture.close()
  })
  group.each.teardown(() => fixture.server.clearFaults())

  test('the first request meets the bearer challenge (401), then the token is sent', async ({
    assert,
  }) => {
    const { driver } = azureDriverFor(fixture)
    const mark = fixture.server.requestLog.length
    assert.isNull(await driver.readKey(kek('challenge')))
    assert.deepEqual(
      since(mark).map((r) => r.status),
      [401, 404]
    )
    const again = fixture.server.requestLog.length
    assert.isNull(await driver.readKey(kek('challenge')))
    assert.deepEqual(
      since(again).map((r) => r.status),
      [404]
    )
    await driver.close()
  })

  test('429 Throttled with Retry-After is retried after that delay, then succeeds', async ({
    assert,
  }) => {
    const { driver, retryDeps } = azureDriverFor(fixture, {
      retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 1_000 },
    })
    const name = kek('429')
    await driver.createKey(name)
    const input = [randomBytes(32), randomBytes(32)]
    const wrapped = await driver.wrap(name, input)
    const mark = fixture.server.requestLog.length
    fixture.server.injectFaults([{ status: 429, retryAfter: 2, pathIncludes: '/unwrapkey' }])
    const opened = await driver.unwrap(name, wrapped)
    assert.deepEqual(
      opened.map((b) => b.toString('hex')),
      input.map((b) => b.toString('hex'))
    )
    assert.deepEqual(
      since(mark)
        .filter((r) => r.path.endsWith('/unwrapkey'))
        .map((r) => r.status)
        .sort(),
      [200, 200, 429]
    )
    // Retry-After: 2 → 2 s exactly (jitter alone would be ≤ 10 ms).
    assert.deepEqual(retryDeps.sleeps, [2000])
    await driver.close()
  })

  test('503 is retried; retries are bounded (E_KMS_UNAVAILABLE)', async ({ assert }) => {
    const { driver, retryDeps } = azureDriverFor(fixture, {
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
    })
    const name = kek('503')
    await driver.createKey(name)
    fixture.server.injectFaults([{ status: 503 }, { status: 503 }])
    const info = await driver.readKey(name)
    assert.equal(info?.latestVersion, 1)
    assert.lengthOf(retryDeps.sleeps, 2)
    fixture.server.injectFaults(Array.from({ length: 4 }, () => ({ status: 503 })))
    const error = await rejectsWith(driver.readKey(name), 'E_KMS_UNAVAILABLE')
    assert.notInclude(error.message, 'ServiceUnavailable')
    assert.equal(fixture.server.pendingFaults, 1)
    await driver.close()
  })

  test('a wrong token is E_KMS_DENIED and not retried; RBAC Forbidden is E_KMS_DENIED', async ({
    assert,
  }) => {
    const { driver, retryDeps } = azureDriverFor({ ...fixture, token: 'not-the-token' })
    const error = await rejectsWith(driver.readKey(kek('denied')), 'E_KMS_DENIED')
    assert.notInclude(error.message, fixture.token)
    assert.lengthOf(retryDeps.sleeps, 0)

    const good = azureDriverFor(fixture)
    const name = kek('rbac')
    await good.driver.createKey(name)
    fixture.server.injectFaults([{ status: 403, pathIncludes: '/wrapkey' }])
    await rejectsWith(good.driver.wrap(name, [randomBytes(32)]), 'E_KMS_DENIED')
    assert.lengthOf(good.retryDeps.sleeps, 0)
    await driver.close()
    await good.driver.close()
  })

  test('a version disabled by another process: Key Vault says KeyDisabled → E_KEY_VERSION_DISALLOWED', async ({
    assert,
  }) => {
    const stale = azureDriverFor(fixture, { versionCacheMs: 60_000 }).driver
    const admin = azureDriverFor(fixture).driver
    const name = kek('disabled')
    await admin.createKey(name)
    const [old] = await stale.wrap(name, [randomBytes(32)])
    await admin.rotateKey(name)
    await admin.configureKey(name, { minDecryptionVersion: 2 })
    const mark = fixture.server.requestLog.length
    await rejectsWith(stale.unwrap(name, [old]), 'E_KEY_VERSION_DISALLOWED')
    assert.include(
      since(mark).map((r) => r.status),
      403
    )
    const [result] = await stale.rewrap(name, [old])
    assert.deepEqual(result.ok ? null : result.code, 'E_KEY_VERSION_DISALLOWED')
    await stale.close()
    await admin.close()
  })

  test('rotate whose response was lost: the retry sees the tagged version and creates no second one', async ({
    assert,
  }) => {
    const { driver, retryDeps } = azureDriverFor(fixture)
    const name = kek('lost')
    await driver.createKey(name)
    fixture.server.injectFaults([{ status: 500, pathIncludes: '/create', afterHandling: true }])
    const info = await driver.rotateKey(name)
    assert.equal(info.latestVersion, 2)
    assert.lengthOf(retryDeps.sleeps, 1)
    const mark = fixture.server.requestLog.length
    const again = await driver.rotateKey(name)
    assert.equal(again.latestVersion, 3)
    assert.lengthOf(
      since(mark).filter((r) => r.path.endsWith('/create')),
      1
    )
    assert.deepEqual(
      again.versions.map((v) => v.version),
      [1, 2, 3]
    )
    await driver.close()
  })

  test('a KEK name Azure cannot hold (underscore, dot) is E_KEK_NAME_UNSUPPORTED before any request', async ({
    assert,
  }) => {
    const { driver } = azureDriverFor(fixture)
    const mark = fixture.server.requestLog.length
    for (const name of ['payments_2026', 'cards.v1']) {
      const error = await rejectsWith(driver.createKey(name), 'E_KEK_NAME_UNSUPPORTED')
      assert.include(error.message, 'letters, digits and dashes')
      assert.include(error.message, name)
      await rejectsWith(driver.readKey(name), 'E_KEK_NAME_UNSUPPORTED')
      await rejectsWith(driver.rotateKey(name), 'E_KEK_NAME_UNSUPPORTED')
      await rejectsWith(driver.wrap(name, [randomBytes(32)]), 'E_KEK_NAME_UNSUPPORTED')
    }
    assert.lengthOf(since(mark), 0)
    const created = await driver.createKey('payments-2026')
    assert.equal(created.latestVersion, 1)
    await driver.close()
  })

  test('requests/s budget: calls wait for tokens, a rewrap item takes two', async ({ assert }) => {
    const { driver } = azureDriverFor(fixture, { requestsPerSecond: 1_000_000 })
    const name = kek('budget')
    await driver.createKey(name)
    const wrapped = await driver.wrap(name, [randomBytes(32), randomBytes(32)])
    await driver.rotateKey(name)

    // 10 requests/s, bucket emptied: 2 rewrap items = 2 unwraps + 2 wraps + 1 version
    // list = 5 tokens, so the call cannot finish in under ~500 ms, however fast the server.
    const paced = azureDriverFor(fixture, { requestsPerSecond: 10 }).driver
    // The burst is a tenth of a second's worth: no 1 s window sees more than 1.1 × the rate.
    assert.equal(paced.budget.burst, 1)
    paced.budget.reserve(paced.budget.burst)
    const mark = fixture.server.requestLog.length
    const started = performance.now()
    const results = await paced.rewrap(name, wrapped)
    const elapsed = performance.now() - started
    assert.isTrue(results.every((r) => r.ok))
    const ops = since(mark).filter((r) => /\/(un)?wrapkey$/.test(r.path) && r.status === 200)
    assert.lengthOf(ops, 4)
    assert.isAtLeast(elapsed, 450)
    await paced.close()
    await driver.close()
  })
})

test.group('azure-keyvault stand-in: wire shapes', (group) => {
  let fixture: AzureFixture
  group.setup(async () => {
    fixture = await startAzureServer()
    return () => fixture.close()
  })

  async function call(method: string, path: string, body?: unknown, token = fixture.token) {
    const { request } = await import('node:https')
    return new Promise<{ status: number; headers: Record<string, any>; json: any }>(
      (resolve, reject) => {
        const req = request(
          `${fixture.url}${path}`,
          {
            method,
            ca: fixture.ca,
            headers: {
              ...(token ? { authorization: `Bearer ${token}` } : {}),
              'content-type': 'application/json',
            },
          },
          (res) => {
            let text = ''
            res.on('data', (c) => (text += c))
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(text) })
            )
          }
        )
        req.on('error', reject)
        req.end(body === undefined ? undefined : JSON.stringify(body))
      }
    )
  }

  test('errors in Key Vault shapes: challenge, KeyNotFound, BadParameter, KeyDisabled', async ({
    assert,
  }) => {
    const anonymous = await call('GET', '/keys/x?api-version=2025-07-01', undefined, '')
    assert.equal(anonymous.status, 401)
    assert.match(
      anonymous.headers['www-authenticate'],
      /^Bearer authorization="[^"]+", resource="[^"]+"$/
    )
    assert.equal(anonymous.json.error.code, 'Unauthorized')

    const missing = await call('GET', '/keys/nope?api-version=2025-07-01')
    assert.equal(missing.status, 404)
    assert.equal(missing.json.error.code, 'KeyNotFound')

    const noVersion = await call('GET', '/keys/nope')
    assert.equal(noVersion.status, 400)
    assert.equal(noVersion.json.error.code, 'BadParameter')

    const created = await call('POST', '/keys/wire/create?api-version=2025-07-01', {
      kty: 'RSA',
      key_size: 2048,
      key_ops: ['wrapKey', 'unwrapKey'],
      tags: { 'rewrap-version': '1' },
    })
    assert.equal(created.status, 200)
    assert.match(created.json.key.kid, /\/keys\/wire\/[0-9a-f]{32}$/)
    assert.equal(created.json.key.kty, 'RSA')
    assert.notProperty(created.json.key, 'd')
    assert.isTrue(created.json.attributes.enabled)
    assert.isNumber(created.json.attributes.created)
    const version = created.json.key.kid.split('/').at(-1)

    const secret = randomBytes(32)
    const wrapped = await call('POST', `/keys/wire/${version}/wrapkey?api-version=2025-07-01`, {
      alg: 'RSA-OAEP-256',
      value: secret.toString('base64url'),
    })
    assert.equal(wrapped.status, 200)
    const bad = await call('POST', `/keys/wire/${version}/unwrapkey?api-version=2025-07-01`, {
      alg: 'RSA-OAEP-256',
      value: Buffer.alloc(256).toString('base64url'),
    })
    assert.equal(bad.status, 400)
    assert.equal(bad.json.error.code, 'BadParameter')

    const disabled = await call('PATCH', `/keys/wire/${version}?api-version=2025-07-01`, {
      attributes: { enabled: false },
    })
    assert.isFalse(disabled.json.attributes.enabled)
    const refused = await call('POST', `/keys/wire/${version}/unwrapkey?api-version=2025-07-01`, {
      alg: 'RSA-OAEP-256',
      value: wrapped.json.value,
    })
    assert.equal(refused.status, 403)
    assert.deepEqual(refused.json, {
      error: {
        code: 'Forbidden',
        message: 'Operation unwrapKey is not allowed on a disabled key.',
        innererror: { code: 'KeyDisabled' },
      },
    })
    assert.notInclude(JSON.stringify(refused.json), secret.toString('base64url'))
  })

  test('lists page with nextLink; rotate makes a version of the same type', async ({ assert }) => {
    for (let i = 0; i < 3; i++) {
      await call('POST', '/keys/paged/create?api-version=2025-07-01', { kty: 'RSA' })
    }
    const first = await call('GET', '/keys/paged/versions?api-version=2025-07-01&maxresults=2')
    assert.lengthOf(first.json.value, 2)
    assert.match(first.json.nextLink, /(\$|%24)skiptoken=2/)
    const next = new URL(first.json.nextLink)
    const second = await call('GET', `${next.pathname}${next.search}`)
    assert.lengthOf(second.json.value, 1)
    assert.isNull(second.json.nextLink)
    const rotated = await call('POST', '/keys/paged/rotate?api-version=2025-07-01')
    assert.equal(rotated.status, 200)
    assert.equal(rotated.json.key.kty, 'RSA')
    const oct = await call('POST', '/keys/hsm/create?api-version=2025-07-01', { kty: 'oct-HSM' })
    assert.equal(oct.json.key.kty, 'oct-HSM')
    assert.notProperty(oct.json.key, 'k')
  })
})

test.group('azure-keyvault: Managed HSM keys (oct-HSM, A256KW)', (group) => {
  let fixture: AzureFixture
  group.setup(async () => {
    fixture = await startAzureServer()
    return () => fixture.close()
  })

  test('wrap, rotate, rewrap and unwrap with A256KW', async ({ assert }) => {
    const { driver } = azureDriverFor(fixture, { keyType: 'oct-HSM' })
    const name = `az-hsm-${randomId()}`
    await driver.createKey(name)
    const input = [randomBytes(32), randomBytes(32)]
    const wrapped = await driver.wrap(name, input)
    // AES key wrap of 32 bytes is 40 bytes.
    for (const value of wrapped) {
      assert.lengthOf(Buffer.from(value.split(':').at(-1)!, 'base64url'), 40)
    }
    await driver.rotateKey(name)
    const results = await driver.rewrap(name, wrapped)
    const moved = results.map((r) => (r.ok ? r.wrapped : ''))
    assert.isTrue(moved.every((w) => w.startsWith('azure:v2:')))
    const opened = await driver.unwrap(name, moved)
    assert.deepEqual(
      opened.map((b) => b.toString('hex')),
      input.map((b) => b.toString('hex'))
    )
    await driver.close()
  })
})
