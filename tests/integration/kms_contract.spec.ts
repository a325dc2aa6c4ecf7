/*
|--------------------------------------------------------------------------
| KMS driver contract
|--------------------------------------------------------------------------
|
| One suite, run against every driver: `local` (in-process, through the
| KmsManager), `vault` (VaultKmsDriver → node-vault → real HTTP → the
| in-process transit server of `kms:serve`), `aws-kms` (AwsKmsDriver →
| @aws-sdk/client-kms → SigV4 over real HTTP → the `kms:serve --api aws-kms`
| stand-in; aws-only behaviour in aws_kms_driver.spec.ts) and
| `azure-keyvault` (the real @azure/keyvault-keys → HTTPS with a test CA →
| the Key Vault stand-in of `kms:serve --api azure-keyvault`; its transport
| in azure_keyvault.spec.ts). Then what only an HTTP KMS can do (retries,
| denial, outage), and the server's HTTP surface.
|
*/
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { test } from '@japa/runner'
import { rejectsWith } from '#tests/helpers/errors'
import app from '@adonisjs/core/services/app'
import type { KmsDriver } from '#kms/contract'
import { LocalKmsDriver } from '#kms/drivers/local'
import { KmsManager } from '#kms/kms_manager'
import { TransitServer } from '#kms/transit_server/transit_server'
import { DEFAULT_MAX_BODY_BYTES } from '#kms/transit_server/request_body'
import { azureDriverFor, startAzureServer } from '#tests/helpers/azure'
import {
  emptyKeyringStore,
  randomId,
  startTransitServer,
  vaultDriverFor,
  type RecordingRetryDeps,
  type TransitFixture,
} from '#tests/helpers/transit'
import { awsDriverFor, startAwsKmsServer } from '#tests/helpers/aws_kms'

/** Items per batch request for the vault driver: small, to prove chunking. */
const BATCH_SIZE = 3

interface DriverUnderTest {
  driver: KmsDriver
  /** Releases what setup started (servers, tables). */
  close?: () => Promise<void>
  /** The server behind the vault driver; undefined for local. */
  fixture?: TransitFixture
  retryDeps?: RecordingRetryDeps
}

/** Every way a DEK could show up in a message. */
function secretForms(dek: Buffer): string[] {
  return [dek.toString('base64'), dek.toString('base64url'), dek.toString('hex')]
}

function assertNoSecret(assert: any, messages: string[], deks: Buffer[]) {
  for (const message of messages) {
    for (const dek of deks) {
      for (const form of secretForms(dek)) assert.notInclude(message, form)
    }
  }
}

/** Flips one bit inside the sealed bytes (the last field) of a `<prefix>:vN:…` string. */
function tamper(wrapped: string): string {
  const cut = wrapped.lastIndexOf(':') + 1
  const encoding = wrapped.startsWith('vault:') ? 'base64' : 'base64url'
  const bytes = Buffer.from(wrapped.slice(cut), encoding)
  bytes[14] ^= 0x01
  return `${wrapped.slice(0, cut)}${bytes.toString(encoding)}`
}

/** A `vault:vN:<base64>` string (Vault Transit, local). */
const VAULT_WRAPPED = (version: number) => new RegExp(`^vault:v${version}:[A-Za-z0-9+/]+={0,2}$`)

function freshDeks(count: number): Buffer[] {
  return Array.from({ length: count }, () => randomBytes(32))
}

function requestsSince(fixture: TransitFixture, mark: number) {
  return fixture.server.requestLog.slice(mark)
}

/*
|--------------------------------------------------------------------------
| The contract, once per driver
|--------------------------------------------------------------------------
*/
const DRIVERS: Array<{
  kind: 'local' | 'vault' | 'aws-kms' | 'azure-keyvault'
  /** The wrapped form of a DEK at a version. */
  wrapped: (version: number) => RegExp
  /** Scheme of its wrapped DEKs (`<scheme>:vN:`); `vault` unless said. */
  scheme?: string
  /** `versions`: trim deletes old versions; `unsupported`: refused (Key Vault deletes keys whole). */
  trim: 'versions' | 'unsupported'
  setup: () => Promise<DriverUnderTest>
  /** The driver over a KMS that holds no KEK at all. */
  empty: () => Promise<DriverUnderTest>
}> = [
  {
    kind: 'local',
    wrapped: VAULT_WRAPPED,
    trim: 'versions',
    setup: async () => {
      const manager = await app.container.make(KmsManager)
      return { driver: await manager.use('local') }
    },
    empty: async () => {
      const { store, drop } = await emptyKeyringStore()
      return { driver: new LocalKmsDriver({ store }), close: drop }
    },
  },
  {
    kind: 'vault',
    wrapped: VAULT_WRAPPED,
    trim: 'versions',
    setup: async () => {
      const fixture = await startTransitServer()
      const { driver, retryDeps } = vaultDriverFor(fixture, { batchSize: BATCH_SIZE })
      return { driver, fixture, retryDeps }
    },
    empty: async () => {
      const { store, drop } = await emptyKeyringStore()
      const token = `test-${randomId(24)}`
      const server = new TransitServer({ store, token })
      await server.listen(0, '127.0.0.1')
      const { driver } = vaultDriverFor({ url: server.url, token })
      return {
        driver,
        close: async () => {
          await server.close()
          await drop()
        },
      }
    },
  },
  {
    // @aws-sdk/client-kms over real HTTP (SigV4) to the kms:serve --api aws-kms stand-in.
    kind: 'aws-kms',
    scheme: 'aws',
    wrapped: (version) => new RegExp(`^aws:v${version}:[A-Za-z0-9+/]+={0,2}$`),
    trim: 'versions',
    setup: async () => {
      const aws = await startAwsKmsServer()
      const { driver, retryDeps } = awsDriverFor(aws)
      return { driver, retryDeps, close: aws.close }
    },
    empty: async () => {
      const aws = await startAwsKmsServer()
      const { driver } = awsDriverFor(aws)
      return { driver, close: aws.close }
    },
  },
  {
    // The real @azure/keyvault-keys over HTTPS (a test CA) → the Key Vault stand-in.
    kind: 'azure-keyvault',
    scheme: 'azure',
    wrapped: (version) => new RegExp(`^azure:v${version}:[0-9a-f]{32}:[A-Za-z0-9_-]+$`),
    trim: 'unsupported',
    setup: async () => {
      const fixture = await startAzureServer()
      const { driver, retryDeps } = azureDriverFor(fixture, { concurrency: BATCH_SIZE })
      return {
        driver,
        retryDeps,
        close: async () => {
          await driver.close()
          await fixture.close()
        },
      }
    },
    empty: async () => {
      const fixture = await startAzureServer()
      const { driver } = azureDriverFor(fixture)
      return {
        driver,
        close: async () => {
          await driver.close()
          await fixture.close()
        },
      }
    },
  },
]

for (const { kind, wrapped: wrappedAt, trim, setup, empty, scheme = 'vault' } of DRIVERS) {
  test.group(`KMS contract (${kind})`, (group) => {
    let sut: DriverUnderTest
    const kek = (label: string) => `contract-${kind}-${label}-${randomId()}`

    group.setup(async () => {
      sut = await setup()
      return async () => {
        if (sut.fixture) {
          await sut.driver.close()
          await sut.fixture.close()
        } else if (sut.close) {
          await sut.driver.close()
          await sut.close()
        }
        await sut.close?.()
      }
    })

    test('createKey creates version 1; a second create is E_KEK_EXISTS', async ({ assert }) => {
      const name = kek('create')
      const before = Math.floor(Date.now() / 1000)
      const info = await sut.driver.createKey(name)
      const after = Math.floor(Date.now() / 1000)
      assert.equal(info.name, name)
      assert.equal(info.latestVersion, 1)
      assert.equal(info.minDecryptionVersion, 1)
      assert.equal(info.minEncryptionVersion, 0)
      assert.equal(info.minAvailableVersion, 0)
      assert.deepEqual(
        info.versions.map((v) => v.version),
        [1]
      )
      const created = info.versions[0].createdAt.getTime() / 1000
      assert.isAtLeast(created, before)
      assert.isAtMost(created, after)
      await rejectsWith(sut.driver.createKey(name), 'E_KEK_EXISTS')
    })

    test('readKey answers the KEK, null when unknown', async ({ assert }) => {
      const name = kek('read')
      assert.isNull(await sut.driver.readKey(name))
      const created = await sut.driver.createKey(name)
      assert.deepEqual(await sut.driver.readKey(name), created)
    })

    test('listKeys names every KEK it holds, sorted, and no other', async ({ assert }) => {
      const suffix = randomId()
      const names = [`contract-${kind}-list-b-${suffix}`, `contract-${kind}-list-a-${suffix}`]
      for (const name of names) await sut.driver.createKey(name)
      const listed = await sut.driver.listKeys()
      assert.deepEqual(
        listed.filter((name) => name.endsWith(suffix)),
        [...names].sort()
      )
      assert.deepEqual(listed, [...listed].sort())
      assert.notInclude(listed, kek('never-created'))
    })

    test('listKeys of a KMS without KEKs is []', async ({ assert }) => {
      const bare = await empty()
      try {
        assert.deepEqual(await bare.driver.listKeys(), [])
      } finally {
        await bare.close?.()
      }
    })

    test('rotateKey adds versions; new wraps use the latest at once', async ({ assert }) => {
      const name = kek('rotate')
      await sut.driver.createKey(name)
      const before = Math.floor(Date.now() / 1000)
      await sut.driver.rotateKey(name)
      const info = await sut.driver.rotateKey(name)
      const after = Math.floor(Date.now() / 1000)
      assert.equal(info.latestVersion, 3)
      assert.deepEqual(
        info.versions.map((v) => v.version),
        [1, 2, 3]
      )
      for (const version of info.versions.slice(1)) {
        const seconds = version.createdAt.getTime() / 1000
        assert.isAtLeast(seconds, before)
        assert.isAtMost(seconds, after)
      }
      assert.isAtMost(info.versions[0].createdAt.getTime(), info.versions[1].createdAt.getTime())
      assert.deepEqual(await sut.driver.readKey(name), info)
      const [wrapped] = await sut.driver.wrap(name, freshDeks(1))
      assert.match(wrapped, wrappedAt(3))
      const dataKey = await sut.driver.generateDataKey(name)
      assert.equal(dataKey.version, 3)
    })

    test('wrap / unwrap a batch larger than the batch size, order kept', async ({ assert }) => {
      const name = kek('batch')
      await sut.driver.createKey(name)
      const input = freshDeks(BATCH_SIZE * 3 + 1)
      const mark = sut.fixture?.server.requestLog.length ?? 0
      const wrapped = await sut.driver.wrap(name, input)
      assert.lengthOf(wrapped, input.length)
      for (const value of wrapped) assert.match(value, wrappedAt(1))
      assert.equal(new Set(wrapped).size, input.length)
      const unwrapped = await sut.driver.unwrap(name, wrapped)
      assert.deepEqual(
        unwrapped.map((b) => b.toString('hex')),
        input.map((b) => b.toString('hex'))
      )
      assert.deepEqual(await sut.driver.unwrap(name, []), [])
      if (sut.fixture) {
        const calls = requestsSince(sut.fixture, mark)
        const chunks = Math.ceil(input.length / BATCH_SIZE)
        assert.equal(calls.filter((c) => c.path.includes('/encrypt/')).length, chunks)
        assert.equal(calls.filter((c) => c.path.includes('/decrypt/')).length, chunks)
      }
    })

    test('generateDataKey returns a fresh 256-bit DEK and its wrapped form', async ({ assert }) => {
      const name = kek('datakey')
      await sut.driver.createKey(name)
      const first = await sut.driver.generateDataKey(name)
      const second = await sut.driver.generateDataKey(name)
      assert.lengthOf(first.plaintext, 32)
      assert.equal(first.version, 1)
      assert.match(first.wrapped, wrappedAt(1))
      assert.notEqual(first.plaintext.toString('hex'), second.plaintext.toString('hex'))
      const [opened] = await sut.driver.unwrap(name, [first.wrapped])
      assert.equal(opened.toString('hex'), first.plaintext.toString('hex'))
    })

    test('rewrap: per-item errors never fail the good items', async ({ assert }) => {
      const name = kek('rewrap')
      const other = kek('rewrap-other')
      await sut.driver.createKey(name)
      await sut.driver.createKey(other)
      const input = freshDeks(4)
      const wrapped = await sut.driver.wrap(name, input)
      const [foreign] = await sut.driver.wrap(other, freshDeks(1))
      await sut.driver.rotateKey(name)

      const batch = [
        wrapped[0],
        'not-a-ciphertext',
        wrapped[1],
        tamper(wrapped[2]),
        foreign,
        wrapped[3],
      ]
      const results = await sut.driver.rewrap(name, batch)
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, false, true, false, false, true]
      )
      for (const failed of results.filter((r) => !r.ok)) {
        assert.equal((failed as any).code, 'E_CIPHERTEXT_INVALID')
        assert.isString((failed as any).message)
      }
      const good = results.filter((r) => r.ok) as Array<{ wrapped: string; version: number }>
      for (const item of good) {
        assert.equal(item.version, 2)
        assert.match(item.wrapped, wrappedAt(2))
      }
      const reopened = await sut.driver.unwrap(
        name,
        good.map((g) => g.wrapped)
      )
      assert.deepEqual(
        reopened.map((b) => b.toString('hex')),
        [input[0], input[1], input[3]].map((b) => b.toString('hex'))
      )
      assertNoSecret(
        assert,
        results.filter((r) => !r.ok).map((r) => (r as any).message),
        input
      )
    })

    test('rewrap to an explicit version', async ({ assert }) => {
      const name = kek('rewrap-version')
      await sut.driver.createKey(name)
      const input = freshDeks(2)
      const wrapped = await sut.driver.wrap(name, input)
      await sut.driver.rotateKey(name)
      await sut.driver.rotateKey(name)
      const results = await sut.driver.rewrap(name, wrapped, 2)
      for (const result of results) {
        assert.isTrue(result.ok)
        if (result.ok) {
          assert.equal(result.version, 2)
          assert.match(result.wrapped, wrappedAt(2))
        }
      }
      const latest = await sut.driver.rewrap(name, wrapped)
      assert.deepEqual(
        latest.map((r) => r.ok && r.version),
        [3, 3]
      )
      const reopened = await sut.driver.unwrap(
        name,
        results.map((r) => (r.ok ? r.wrapped : ''))
      )
      assert.deepEqual(
        reopened.map((b) => b.toString('hex')),
        input.map((b) => b.toString('hex'))
      )
    })

    test('min_decryption_version retires old versions reversibly', async ({ assert }) => {
      const name = kek('retire')
      await sut.driver.createKey(name)
      const input = freshDeks(1)
      const [old] = await sut.driver.wrap(name, input)
      await sut.driver.rotateKey(name)

      const retired = await sut.driver.configureKey(name, { minDecryptionVersion: 2 })
      assert.equal(retired.minDecryptionVersion, 2)
      assert.deepEqual(
        retired.versions.map((v) => v.version),
        [2]
      )
      const error = await rejectsWith(sut.driver.unwrap(name, [old]), 'E_KEY_VERSION_DISALLOWED')
      assertNoSecret(assert, [error.message], input)
      const [rewrapped] = await sut.driver.rewrap(name, [old])
      assert.isFalse(rewrapped.ok)
      assert.equal((rewrapped as any).code, 'E_KEY_VERSION_DISALLOWED')

      const restored = await sut.driver.configureKey(name, { minDecryptionVersion: 1 })
      assert.equal(restored.minDecryptionVersion, 1)
      const [opened] = await sut.driver.unwrap(name, [old])
      assert.equal(opened.toString('hex'), input[0].toString('hex'))
    })

    test('trim is refused while min_encryption_version is 0, then deletes for good', async ({
      assert,
    }) => {
      const name = kek('trim')
      await sut.driver.createKey(name)
      const [old] = await sut.driver.wrap(name, freshDeks(1))
      await sut.driver.rotateKey(name)
      await sut.driver.rotateKey(name)

      await rejectsWith(sut.driver.trimKey(name, 2), 'E_KMS_REJECTED')
      await sut.driver.configureKey(name, { minDecryptionVersion: 2, minEncryptionVersion: 2 })
      await rejectsWith(sut.driver.trimKey(name, 3), 'E_KMS_REJECTED')

      const trimmed = await sut.driver.trimKey(name, 2)
      assert.equal(trimmed.minAvailableVersion, 2)
      assert.deepEqual(
        trimmed.versions.map((v) => v.version),
        [2, 3]
      )
      await rejectsWith(sut.driver.trimKey(name, 1), 'E_KMS_REJECTED')
      await rejectsWith(
        sut.driver.configureKey(name, { minDecryptionVersion: 1 }),
        'E_KMS_REJECTED'
      )
      await rejectsWith(sut.driver.unwrap(name, [old]), 'E_KEY_VERSION_DISALLOWED')
    }).skip(trim !== 'versions', `${kind} cannot delete single key versions`)

    test('trim is refused with E_TRIM_UNSUPPORTED; retired versions stay, re-enabled at will', async ({
      assert,
    }) => {
      const name = kek('trim-unsupported')
      await sut.driver.createKey(name)
      const input = freshDeks(1)
      const [old] = await sut.driver.wrap(name, input)
      await sut.driver.rotateKey(name)
      await sut.driver.configureKey(name, { minDecryptionVersion: 2, minEncryptionVersion: 2 })
      await rejectsWith(sut.driver.trimKey(name, 2), 'E_TRIM_UNSUPPORTED')
      const info = await sut.driver.readKey(name)
      assert.equal(info?.minAvailableVersion, 0)
      await sut.driver.configureKey(name, { minDecryptionVersion: 1 })
      const [opened] = await sut.driver.unwrap(name, [old])
      assert.equal(opened.toString('hex'), input[0].toString('hex'))
    }).skip(trim !== 'unsupported', `${kind} trims versions`)

    test('unwrap of tampered or malformed ciphertext is E_CIPHERTEXT_INVALID', async ({
      assert,
    }) => {
      const name = kek('tamper')
      await sut.driver.createKey(name)
      const input = freshDeks(2)
      const wrapped = await sut.driver.wrap(name, input)
      const messages: string[] = []
      for (const bad of [
        tamper(wrapped[0]),
        `${scheme}:v1:!!`,
        `${scheme}:v9:` + 'A'.repeat(40),
        'x',
      ]) {
        const error = await rejectsWith(
          sut.driver.unwrap(name, [wrapped[1], bad]),
          'E_CIPHERTEXT_INVALID'
        )
        messages.push(error.message)
      }
      assertNoSecret(assert, messages, input)
    })

    test('an unknown KEK is E_KEK_NOT_FOUND, and wrap does not create it', async ({ assert }) => {
      const name = kek('unknown')
      const other = kek('unknown-source')
      await sut.driver.createKey(other)
      const [wrapped] = await sut.driver.wrap(other, freshDeks(1))
      await rejectsWith(sut.driver.wrap(name, freshDeks(1)), 'E_KEK_NOT_FOUND')
      await rejectsWith(sut.driver.unwrap(name, [wrapped]), 'E_KEK_NOT_FOUND')
      await rejectsWith(sut.driver.rewrap(name, [wrapped]), 'E_KEK_NOT_FOUND')
      await rejectsWith(sut.driver.generateDataKey(name), 'E_KEK_NOT_FOUND')
      await rejectsWith(sut.driver.rotateKey(name), 'E_KEK_NOT_FOUND')
      await rejectsWith(
        sut.driver.configureKey(name, { minDecryptionVersion: 1 }),
        'E_KEK_NOT_FOUND'
      )
      await rejectsWith(sut.driver.trimKey(name, 1), 'E_KEK_NOT_FOUND')
      assert.isNull(await sut.driver.readKey(name))
    })
  })
}

/*
|--------------------------------------------------------------------------
| Vault driver only: retries, denial, outage
|--------------------------------------------------------------------------
*/
test.group('KMS contract (vault): transport', (group) => {
  let fixture: TransitFixture
  const kek = (label: string) => `transport-${label}-${randomId()}`

  group.setup(async () => {
    fixture = await startTransitServer()
    return () => fixture.close()
  })
  group.each.teardown(() => fixture.server.clearFaults())

  test('429 with Retry-After is retried after the delay the server asked for', async ({
    assert,
  }) => {
    const { driver, retryDeps } = vaultDriverFor(fixture, {
      retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 1_000 },
    })
    const name = kek('429')
    await driver.createKey(name)
    const input = freshDeks(2)
    const wrapped = await driver.wrap(name, input)

    const mark = fixture.server.requestLog.length
    fixture.server.injectFaults([{ status: 429, retryAfter: 1, pathIncludes: '/decrypt/' }])
    const opened = await driver.unwrap(name, wrapped)
    assert.deepEqual(
      opened.map((b) => b.toString('hex')),
      input.map((b) => b.toString('hex'))
    )
    assert.deepEqual(
      requestsSince(fixture, mark).map((r) => r.status),
      [429, 200]
    )
    // Retry-After: 1 → exactly 1 s (jitter alone would have been ≤ 10 ms).
    assert.deepEqual(retryDeps.sleeps, [1000])
  })

  test('503 is retried until it succeeds', async ({ assert }) => {
    const { driver, retryDeps } = vaultDriverFor(fixture)
    const name = kek('503')
    await driver.createKey(name)
    const mark = fixture.server.requestLog.length
    fixture.server.injectFaults([{ status: 503 }, { status: 503 }])
    const info = await driver.readKey(name)
    assert.equal(info?.latestVersion, 1)
    assert.deepEqual(
      requestsSince(fixture, mark).map((r) => r.status),
      [503, 503, 200]
    )
    assert.lengthOf(retryDeps.sleeps, 2)
    for (const delay of retryDeps.sleeps) assert.isAtMost(delay, 200)
  })

  test('retries are bounded: E_KMS_UNAVAILABLE after maxAttempts', async ({ assert }) => {
    const { driver, retryDeps } = vaultDriverFor(fixture, {
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
    })
    const name = kek('bounded')
    await driver.createKey(name)
    const mark = fixture.server.requestLog.length
    fixture.server.injectFaults(Array.from({ length: 5 }, () => ({ status: 503 })))
    await rejectsWith(driver.readKey(name), 'E_KMS_UNAVAILABLE')
    assert.lengthOf(requestsSince(fixture, mark), 3)
    assert.lengthOf(retryDeps.sleeps, 2)
    assert.equal(fixture.server.pendingFaults, 2)
  })

  test('rotate is not retried after a 500 (not idempotent)', async ({ assert }) => {
    const { driver, retryDeps } = vaultDriverFor(fixture)
    const name = kek('rotate500')
    await driver.createKey(name)
    const mark = fixture.server.requestLog.length
    fixture.server.injectFaults([{ status: 500, pathIncludes: '/rotate' }])
    await rejectsWith(driver.rotateKey(name), 'E_KMS_UNAVAILABLE')
    const rotates = requestsSince(fixture, mark).filter((r) => r.path.endsWith('/rotate'))
    assert.deepEqual(
      rotates.map((r) => r.status),
      [500]
    )
    assert.lengthOf(retryDeps.sleeps, 0)
    const after = await driver.readKey(name)
    assert.equal(after?.latestVersion, 1)
  })

  test('a wrong token is E_KMS_DENIED and is not retried', async ({ assert }) => {
    const { driver, retryDeps } = vaultDriverFor({ url: fixture.url, token: 'wrong-token' })
    const mark = fixture.server.requestLog.length
    const error = await rejectsWith(driver.readKey(kek('denied')), 'E_KMS_DENIED')
    assert.notInclude(error.message, fixture.token)
    assert.deepEqual(
      requestsSince(fixture, mark).map((r) => r.status),
      [403]
    )
    assert.lengthOf(retryDeps.sleeps, 0)
  })

  test('a server that is down is E_KMS_UNAVAILABLE, fast', async ({ assert }) => {
    const gone = await startTransitServer()
    await gone.close()
    const { driver, retryDeps } = vaultDriverFor(gone)
    const started = Date.now()
    await rejectsWith(driver.readKey(kek('down')), 'E_KMS_UNAVAILABLE')
    await rejectsWith(driver.rotateKey(kek('down')), 'E_KMS_UNAVAILABLE')
    assert.isBelow(Date.now() - started, 5_000)
    assert.isAbove(retryDeps.sleeps.length, 0)
  })

  test('key creation times come from the server clock', async ({ assert }) => {
    let now = 1_700_000_000
    const clocked = await startTransitServer({ now: () => now })
    try {
      const { driver } = vaultDriverFor(clocked)
      const name = kek('clock')
      await driver.createKey(name)
      now += 3600
      const info = await driver.rotateKey(name)
      assert.deepEqual(
        info.versions.map((v) => v.createdAt.getTime() / 1000),
        [1_700_000_000, 1_700_003_600]
      )
    } finally {
      await clocked.close()
    }
  })
})

/*
|--------------------------------------------------------------------------
| The server's HTTP surface, as Vault answers
|--------------------------------------------------------------------------
*/
test.group('transit server: HTTP surface', (group) => {
  let fixture: TransitFixture
  const kek = (label: string) => `http-${label}-${randomId()}`

  group.setup(async () => {
    fixture = await startTransitServer()
    return () => fixture.close()
  })

  function call(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = fixture.token
  ) {
    const headers: Record<string, string> = {}
    if (token !== null) headers['x-vault-token'] = token
    let payload: string | undefined
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body)
      headers['content-type'] = 'application/json'
    }
    return fetch(`${fixture.url}${path}`, { method, headers, body: payload }).then(async (res) => {
      const text = await res.text()
      return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined }
    })
  }

  async function statusOf(method: string, path: string, body?: unknown) {
    const res = await call(method, path, body)
    return res.status
  }

  test('sys/health answers without a token', async ({ assert }) => {
    const res = await call('GET', '/v1/sys/health', undefined, null)
    assert.equal(res.status, 200)
    assert.isFalse(res.json.sealed)
    assert.isTrue(res.json.initialized)
  })

  test('missing or wrong token is 403; unknown paths 404; wrong methods 405', async ({
    assert,
  }) => {
    const name = kek('auth')
    for (const token of [null, '', 'nope', `${fixture.token}x`]) {
      const res = await call('POST', `/v1/transit/keys/${name}`, {}, token)
      assert.equal(res.status, 403)
      assert.deepEqual(res.json, { errors: ['permission denied'] })
    }
    assert.equal(await statusOf('GET', '/v1/transit/nothing/here'), 404)
    assert.equal(await statusOf('GET', '/v1/other-mount/keys/x'), 404)
    assert.equal(await statusOf('GET', '/v1/transit/keys/bad%2Fname'), 404)
    const unknown = await call('GET', `/v1/transit/keys/${name}`)
    assert.equal(unknown.status, 404)
    assert.deepEqual(unknown.json, { errors: [] })
    const wrongMethod = await call('GET', `/v1/transit/encrypt/${name}`)
    assert.equal(wrongMethod.status, 405)
    assert.equal(wrongMethod.headers.get('allow'), 'POST, PUT')
    assert.equal(await statusOf('DELETE', `/v1/transit/keys/${name}/rotate`), 405)
  })

  test("GET keys?list=true answers Vault's LIST shape; a plain GET is 405", async ({ assert }) => {
    const names = [kek('list-b'), kek('list-a')]
    for (const name of names) assert.equal(await statusOf('POST', `/v1/transit/keys/${name}`), 200)
    for (const path of ['/v1/transit/keys?list=true', '/v1/transit/keys?list=1']) {
      const res = await call('GET', path)
      assert.equal(res.status, 200, path)
      assert.containsSubset(res.json, { lease_id: '', renewable: false, mount_type: 'transit' })
      assert.deepEqual(Object.keys(res.json.data), ['keys'])
      const keys: string[] = res.json.data.keys
      assert.deepEqual(keys, [...keys].sort())
      for (const name of names) assert.include(keys, name)
    }
    const plainGet = await call('GET', '/v1/transit/keys')
    assert.equal(plainGet.status, 405)
  })

  test('listing keys with no key is 404 {"errors":[]}, as Vault answers', async ({ assert }) => {
    const { store, drop } = await emptyKeyringStore()
    const token = `test-${randomId(24)}`
    const bare = new TransitServer({ store, token })
    await bare.listen(0, '127.0.0.1')
    try {
      const res = await fetch(`${bare.url}/v1/transit/keys?list=true`, {
        headers: { 'x-vault-token': token },
      })
      assert.equal(res.status, 404)
      assert.deepEqual(await res.json(), { errors: [] })
    } finally {
      await bare.close()
      await drop()
    }
  })

  test('malformed JSON is 400 and the error never echoes the body', async ({ assert }) => {
    const secret = randomBytes(32).toString('base64')
    const res = await call('POST', `/v1/transit/encrypt/${kek('json')}`, `{"plaintext":"${secret}"`)
    assert.equal(res.status, 400)
    assert.lengthOf(res.json.errors, 1)
    assert.notInclude(JSON.stringify(res.json), secret)
    const notObject = await call('POST', `/v1/transit/encrypt/${kek('json')}`, '[1,2]')
    assert.equal(notObject.status, 400)
  })

  test('bodies over the limit are 413', async ({ assert }) => {
    assert.equal(DEFAULT_MAX_BODY_BYTES, 32 * 1024 * 1024)
    const small = await startTransitServer({ maxBodyBytes: 1024 })
    try {
      const res = await fetch(`${small.url}/v1/transit/encrypt/${kek('big')}`, {
        method: 'POST',
        headers: { 'x-vault-token': small.token, 'content-type': 'application/json' },
        body: JSON.stringify({ plaintext: Buffer.alloc(2048).toString('base64') }),
      })
      assert.equal(res.status, 413)
      assert.deepEqual(await res.json(), { errors: ['http: request body too large'] })
    } finally {
      await small.close()
    }
    // Default limit: a declared length over 32 MiB is refused before any byte is read.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${fixture.url}/v1/transit/encrypt/${kek('huge')}`, {
        method: 'POST',
        headers: {
          'x-vault-token': fixture.token,
          'content-type': 'application/json',
          'content-length': String(DEFAULT_MAX_BODY_BYTES + 1),
        },
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
        req.destroy()
      })
      req.on('error', reject)
      req.write('{')
    })
    assert.equal(status, 413)
  })

  test('key lifecycle answers 200 with the key data; DELETE needs deletion_allowed', async ({
    assert,
  }) => {
    const name = kek('lifecycle')
    const created = await call('POST', `/v1/transit/keys/${name}`, { type: 'aes256-gcm96' })
    assert.equal(created.status, 200)
    assert.equal(created.json.data.latest_version, 1)
    assert.equal(created.json.data.type, 'aes256-gcm96')
    assert.notProperty(created.json.data.keys, '0')
    const again = await call('POST', `/v1/transit/keys/${name}`, {})
    assert.equal(again.status, 200)
    assert.include(again.json.warnings[0], 'already existed')
    assert.equal(
      await statusOf('POST', `/v1/transit/keys/${kek('rsa')}`, { type: 'rsa-2048' }),
      400
    )

    const rotated = await call('POST', `/v1/transit/keys/${name}/rotate`)
    assert.equal(rotated.status, 200)
    assert.equal(rotated.json.data.latest_version, 2)
    const configured = await call('POST', `/v1/transit/keys/${name}/config`, {
      min_encryption_version: 2,
      min_decryption_version: '2',
    })
    assert.equal(configured.status, 200)
    assert.deepEqual(Object.keys(configured.json.data.keys), ['2'])
    const trimmed = await call('POST', `/v1/transit/keys/${name}/trim`, {
      min_available_version: 2,
    })
    assert.equal(trimmed.status, 200)
    assert.equal(trimmed.json.data.min_available_version, 2)

    const refused = await call('DELETE', `/v1/transit/keys/${name}`)
    assert.equal(refused.status, 400)
    assert.deepEqual(refused.json, { errors: ['deletion is not allowed for this key'] })
    await call('POST', `/v1/transit/keys/${name}/config`, { deletion_allowed: true })
    const deleted = await call('DELETE', `/v1/transit/keys/${name}`)
    assert.equal(deleted.status, 204)
    assert.equal(await statusOf('GET', `/v1/transit/keys/${name}`), 404)
    assert.equal(await statusOf('DELETE', `/v1/transit/keys/${name}`), 400)
  })

  test('encrypt upserts an unknown key; datakey and decrypt do not', async ({ assert }) => {
    const name = kek('upsert')
    const plaintext = randomBytes(32).toString('base64')
    assert.equal(await statusOf('POST', `/v1/transit/datakey/plaintext/${name}`, {}), 400)
    assert.equal(
      await statusOf('POST', `/v1/transit/decrypt/${name}`, { ciphertext: 'vault:v1:AAAA' }),
      400
    )
    const encrypted = await call('POST', `/v1/transit/encrypt/${name}`, { plaintext })
    assert.equal(encrypted.status, 200)
    assert.equal(encrypted.json.data.key_version, 1)
    assert.equal(await statusOf('GET', `/v1/transit/keys/${name}`), 200)
    const decrypted = await call('POST', `/v1/transit/decrypt/${name}`, {
      ciphertext: encrypted.json.data.ciphertext,
    })
    assert.equal(decrypted.json.data.plaintext, plaintext)

    const wrapped = await call('POST', `/v1/transit/datakey/wrapped/${name}`, { bits: 128 })
    assert.equal(wrapped.status, 200)
    assert.notProperty(wrapped.json.data, 'plaintext')
    const opened = await call('POST', `/v1/transit/decrypt/${name}`, {
      ciphertext: wrapped.json.data.ciphertext,
    })
    assert.lengthOf(Buffer.from(opened.json.data.plaintext, 'base64'), 16)
    assert.equal(
      await statusOf('POST', `/v1/transit/datakey/plaintext/${name}`, { bits: 100 }),
      400
    )
  })

  test('batches keep order and echo references; failed items as Vault answers', async ({
    assert,
  }) => {
    const name = kek('batch')
    const inputs = [randomBytes(16), randomBytes(16)].map((b) => b.toString('base64'))
    const encrypted = await call('POST', `/v1/transit/encrypt/${name}`, {
      batch_input: [
        { plaintext: inputs[0], reference: 'a' },
        { plaintext: 'not base64!', reference: 'b' },
        { plaintext: inputs[1], reference: 'c' },
      ],
    })
    assert.equal(encrypted.status, 400)
    const results = encrypted.json.data.batch_results
    assert.deepEqual(
      results.map((r: any) => r.reference),
      ['a', 'b', 'c']
    )
    assert.match(results[1].error, /^illegal base64 data at input byte \d+$/)
    assert.notProperty(results[1], 'ciphertext')

    const partial = await call('POST', `/v1/transit/encrypt/${name}`, {
      partial_failure_response_code: 207,
      batch_input: [{ plaintext: inputs[0] }, { plaintext: '@' }],
    })
    assert.equal(partial.status, 207)

    const batch = [
      { ciphertext: results[0].ciphertext, reference: 'x' },
      { ciphertext: 'garbage', reference: 'y' },
      { ciphertext: results[2].ciphertext, reference: 'z' },
    ]
    const decrypted = await call('POST', `/v1/transit/decrypt/${name}`, { batch_input: batch })
    assert.equal(decrypted.status, 400)
    assert.deepEqual(
      decrypted.json.data.batch_results.map((r: any) => [r.reference, r.plaintext ?? r.error]),
      [
        ['x', inputs[0]],
        ['y', 'invalid ciphertext: no prefix'],
        ['z', inputs[1]],
      ]
    )

    await call('POST', `/v1/transit/keys/${name}/rotate`)
    const rewrapped = await call('POST', `/v1/transit/rewrap/${name}`, { batch_input: batch })
    assert.equal(rewrapped.status, 200)
    const items = rewrapped.json.data.batch_results
    assert.deepEqual(
      items.map((r: any) => [r.reference, r.key_version ?? null, Boolean(r.error)]),
      [
        ['x', 2, false],
        ['y', null, true],
        ['z', 2, false],
      ]
    )
    assert.equal(await statusOf('POST', `/v1/transit/rewrap/${name}`, { batch_input: [] }), 400)
  })

  test('the request log holds method, path and status only; no secret in the log file', async ({
    assert,
  }) => {
    const name = kek('log')
    const plaintext = randomBytes(32).toString('base64')
    const mark = fixture.server.requestLog.length
    await call('POST', `/v1/transit/encrypt/${name}?x=1`, { plaintext })
    const entries = requestsSince(fixture, mark)
    assert.deepEqual(entries, [
      { method: 'POST', path: `/v1/transit/encrypt/${name}`, status: 200 },
    ])
    const logFile = process.env.LOG_FILE
    assert.isString(logFile, 'LOG_FILE is set by bin/test.ts')
    const { readFile } = await import('node:fs/promises')
    const text = await readFile(logFile!, 'utf8')
    assert.notInclude(text, fixture.token)
    assert.notInclude(text, plaintext)
  })
})
