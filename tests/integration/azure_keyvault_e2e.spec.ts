/*
|--------------------------------------------------------------------------
| End to end on the azure-keyvault driver
|--------------------------------------------------------------------------
|
| The commands users run (rotate:kek, rotation:verify, kek:retire /
| unretire / trim, reencrypt) on KEKs held in the Key Vault stand-in,
| through the real SDK over HTTPS; then `kms:serve --api azure-keyvault`
| and `rotate:kek` as real child processes configured by the environment
| only (KMS_DRIVER, AZURE_KEYVAULT_URL, NODE_EXTRA_CA_CERTS), the rotation
| SIGKILLed mid-run and resumed.
|
*/
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { KmsManager } from '#kms/kms_manager'
import type { AzureKeyVaultDriver } from '#kms/drivers/azure_keyvault'
import { Clock } from '#services/clock'
import { KeyRotationService } from '#services/key_rotation_service'
import { spawnAce } from '#tests/helpers/ace_child'
import { azureDriverFor, startAzureServer, testTls, type AzureFixture } from '#tests/helpers/azure'
import { assertAllDecrypt, kekName, seed, versionCounts } from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'
import { runAce } from '#tests/helpers/ace'
import { ShiftedClock } from '#tests/helpers/clock'
import { freePort, randomId, type RecordingRetryDeps } from '#tests/helpers/transit'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const ACE = fileURLToPath(new URL('../../ace.js', import.meta.url))

const clock = new ShiftedClock()
/** The shared in-process Ace runner (exit code, lines, the JSON line). */
const ace = runAce

/** Every KEK on one azure-keyvault driver talking to `fixture`. */
function useAzure(fixture: Pick<AzureFixture, 'url' | 'token' | 'ca'>) {
  const { driver, retryDeps } = azureDriverFor(fixture, {
    // A cap above Retry-After: 1 s, so the server's delay is used as is.
    retry: { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 1_000 },
  })
  app.container.swap(
    KmsManager,
    () => new KmsManager({ default: 'azure-keyvault', drivers: { 'azure-keyvault': () => driver } })
  )
  return { driver, retryDeps }
}

async function firstWrappedDek(kek: string): Promise<string> {
  const row = await db.from('vault_entries').where('kek_name', kek).orderBy('id').firstOrFail()
  return row.wrapped_dek
}

test.group('azure-keyvault end to end: the commands', (group) => {
  let fixture: AzureFixture
  let driver: AzureKeyVaultDriver
  let retryDeps: RecordingRetryDeps

  group.setup(async () => {
    fixture = await startAzureServer()
    return () => fixture.close()
  })
  group.each.setup(() => {
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    ;({ driver, retryDeps } = useAzure(fixture))
    return async () => {
      fixture.server.clearFaults()
      app.container.restoreAll()
      await driver.close()
    }
  })

  test('rotate:kek, rotation:verify --full, kek:retire, kek:trim refused, kek:unretire', async ({
    assert,
  }) => {
    const kek = kekName('az')
    await driver.createKey(kek)
    const expected = await seed(kek, 120)
    const old = await firstWrappedDek(kek)
    assert.match(old, /^azure:v1:[0-9a-f]{32}:/)
    assert.deepEqual(await versionCounts(kek), { 1: 120 })

    // The estimate is bound by the KMS budget: 2 requests per row, so rows/s = budget / 2.
    const plan = await ace('rotate:kek', [kek, '--dry-run', '--json'])
    assert.equal(plan.exitCode, 0)
    assert.equal(plan.json.quotaRowsPerSecond, driver.budget.ratePerSecond / 2)
    const slow = azureDriverFor(fixture, { requestsPerSecond: 20 }).driver
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'azure-keyvault', drivers: { 'azure-keyvault': () => slow } })
    )
    const bound = await ace('rotate:kek', [kek, '--dry-run', '--json'])
    assert.equal(bound.json.quotaRowsPerSecond, 10)
    assert.equal(bound.json.estimatedSeconds, 12, '120 rows at 10 rows/s')
    await slow.close()
    await driver.close()
    ;({ driver, retryDeps } = useAzure(fixture))

    const rotated = await ace('rotate:kek', [kek, '--batch-size', '50', '--json'])
    assert.equal(rotated.exitCode, 0, JSON.stringify(rotated.json))
    assert.equal(rotated.json.status, 'completed')
    assert.equal(rotated.json.rewrapped, 120)
    assert.equal(rotated.json.targetVersion, 2)
    assert.deepEqual(await versionCounts(kek), { 2: 120 })
    const moved = await firstWrappedDek(kek)
    assert.match(moved, /^azure:v2:[0-9a-f]{32}:/)

    const verified = await ace('rotation:verify', [kek, '--full', '--json'])
    assert.equal(verified.exitCode, 0, JSON.stringify(verified.json))

    clock.offsetMs = 25 * HOUR
    const retired = await ace('kek:retire', [kek, '--json'])
    assert.equal(retired.exitCode, 0, JSON.stringify(retired.json))
    assert.equal(retired.json.minDecryptionVersion, 2)
    // Retire disabled v1 in Key Vault: the vault itself now refuses it.
    const v1 = await driver.readKey(kek)
    assert.deepEqual(
      v1!.versions.map((v) => v.version),
      [2]
    )
    const refused = await driver.unwrap(kek, [old]).catch((e) => e)
    assert.equal(refused.code, 'E_KEY_VERSION_DISALLOWED')
    await assertAllDecrypt(assert, expected)

    // Refused up front, not with the retention rule's E_TRIM_REFUSED: it will never be possible.
    const early = await ace('kek:trim', [kek, '--json'])
    assert.equal(early.exitCode, 1)
    assert.match(early.json.error, /^E_TRIM_UNSUPPORTED: /)

    clock.offsetMs = 25 * HOUR + 31 * DAY
    const mark = fixture.server.requestLog.length
    const trimmed = await ace('kek:trim', [kek, '--json'])
    assert.equal(trimmed.exitCode, 1)
    assert.match(trimmed.json.error, /^E_TRIM_UNSUPPORTED: /)
    assert.isFalse(
      fixture.server.requestLog.slice(mark).some((r) => r.method !== 'GET'),
      'trim changed nothing in the vault'
    )

    const unretired = await ace('kek:unretire', [kek, '--json'])
    assert.equal(unretired.exitCode, 0, JSON.stringify(unretired.json))
    assert.equal(unretired.json.minDecryptionVersion, 1)
    const [dek] = await driver.unwrap(kek, [old])
    assert.lengthOf(dek, 32)
    await assertAllDecrypt(assert, expected)
  }).timeout(60_000)

  test('reencrypt moves every row to another Key Vault KEK', async ({ assert }) => {
    const from = kekName('azbad')
    const to = kekName('aznew')
    await driver.createKey(from)
    await driver.createKey(to)
    const expected = await seed(from, 90)
    const out = await ace('reencrypt', ['--from', from, '--to', to, '--batch-size', '40', '--json'])
    assert.equal(out.exitCode, 0, JSON.stringify(out.json))
    assert.equal(out.json.reencrypted, 90)
    assert.deepEqual(await versionCounts(to), { 1: 90 })
    assert.deepEqual(await versionCounts(from), {})
    await assertAllDecrypt(assert, expected)
  }).timeout(60_000)

  test('429 Throttled during a rotation is pacing, not failure: Retry-After honoured, run completes', async ({
    assert,
  }) => {
    const kek = kekName('az429')
    await driver.createKey(kek)
    const expected = await seed(kek, 60)
    fixture.server.injectFaults([
      { status: 429, retryAfter: 1, pathIncludes: '/unwrapkey' },
      { status: 429, retryAfter: 1, pathIncludes: '/wrapkey' },
      { status: 503, pathIncludes: '/unwrapkey' },
    ])
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { batchSize: 30 })
    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 60)
    assert.equal(run.failed, 0)
    assert.equal(fixture.server.pendingFaults, 0)
    assert.deepEqual(
      retryDeps.sleeps.filter((ms) => ms === 1000),
      [1000, 1000]
    )
    assert.deepEqual(await versionCounts(kek), { 2: 60 })
    await assertAllDecrypt(assert, expected)
  }).timeout(60_000)
})

test.group('azure-keyvault end to end: least-privilege roles', (group) => {
  const encryptionUser = `svc-${randomId(16)}`
  const cryptoUser = `usr-${randomId(16)}`
  let fixture: AzureFixture

  group.setup(async () => {
    fixture = await startAzureServer({
      limitedTokens: {
        // Key Vault Crypto Service Encryption User / Key Vault Crypto User.
        [encryptionUser]: ['read', 'wrap/action', 'unwrap/action'],
        [cryptoUser]: ['read', 'wrap/action', 'unwrap/action', 'update/action'],
      },
    })
    return () => fixture.close()
  })
  group.each.setup(() => {
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    return () => app.container.restoreAll()
  })

  test('Crypto Service Encryption User: preflight passes, rotate:kek is E_KMS_DENIED with nothing moved; Crypto User may retire', async ({
    assert,
  }) => {
    const admin = useAzure(fixture).driver
    const kek = kekName('azrbac')
    await admin.createKey(kek)
    const expected = await seed(kek, 40)

    useAzure({ ...fixture, token: encryptionUser })
    const pre = await ace('rotation:preflight', [kek, '--json'])
    assert.equal(pre.exitCode, 0, JSON.stringify(pre.json))
    await assertAllDecrypt(assert, expected)
    const rotated = await ace('rotate:kek', [kek, '--json'])
    assert.equal(rotated.exitCode, 1)
    assert.include(JSON.stringify(rotated.json), 'E_KMS_DENIED')
    assert.deepEqual(await versionCounts(kek), { 1: 40 })
    const info = await admin.readKey(kek)
    assert.equal(info!.latestVersion, 1, 'no version was created')

    useAzure(fixture)
    const run = await ace('rotate:kek', [kek, '--resume', '--json'])
    assert.equal(run.exitCode, 0, JSON.stringify(run.json))
    clock.offsetMs = 25 * HOUR
    useAzure({ ...fixture, token: encryptionUser })
    const denied = await ace('kek:retire', [kek, '--json'])
    assert.equal(denied.exitCode, 1)
    assert.include(JSON.stringify(denied.json), 'E_KMS_DENIED')
    useAzure({ ...fixture, token: cryptoUser })
    const retired = await ace('kek:retire', [kek, '--json'])
    assert.equal(retired.exitCode, 0, JSON.stringify(retired.json))
    assert.equal(retired.json.minDecryptionVersion, 2)
    await assertAllDecrypt(assert, expected)
    await admin.close()
  }).timeout(60_000)
})

test.group('azure-keyvault end to end: child processes', (group) => {
  group.each.teardown(() => app.container.restoreAll())

  test('KMS_DRIVER=azure-keyvault: a missing or plain-http AZURE_KEYVAULT_URL is E_KMS_CONFIG when used', async ({
    assert,
  }) => {
    const unset = spawnAce(['kek:list'], { KMS_DRIVER: 'azure-keyvault', AZURE_KEYVAULT_URL: '' })
    assert.equal(await unset.exited, 1)
    assert.match(unset.output(), /E_KMS_CONFIG: .*AZURE_KEYVAULT_URL is not set/)
    const plain = spawnAce(['kek:list'], {
      KMS_DRIVER: 'azure-keyvault',
      AZURE_KEYVAULT_URL: 'http://127.0.0.1:1',
    })
    assert.equal(await plain.exited, 1)
    assert.match(plain.output(), /E_KMS_CONFIG: .*must be https:\/\//)
    // A configured but unused azure entry never stops the app.
    const unused = spawnAce(['kek:list'], { KMS_DRIVER: 'local', AZURE_KEYVAULT_URL: '' })
    assert.equal(await unused.exited, 0, unused.output().slice(-300))
  }).timeout(60_000)

  test('kms:serve --api azure-keyvault needs a certificate', async ({ assert }) => {
    const child = spawnAce(['kms:serve', '--api', 'azure-keyvault', '--port', '0'], {
      KMS_SERVE_TOKEN: `test-${randomId(24)}`,
    })
    assert.equal(await child.exited, 1)
    assert.match(child.output(), /E_KMS_CONFIG: .*--tls-cert and --tls-key/)
  }).timeout(60_000)

  test('rotate:kek against kms:serve --api azure-keyvault, SIGKILLed mid-run, resumes and rotates once', async ({
    assert,
  }) => {
    const tls = await testTls()
    const token = `test-${randomId(24)}`
    const port = await freePort()
    const serve = spawn(
      process.execPath,
      [
        ACE,
        'kms:serve',
        '--api',
        'azure-keyvault',
        '--port',
        String(port),
        '--tls-cert',
        tls.files.cert,
        '--tls-key',
        tls.files.key,
      ],
      { env: { ...process.env, KMS_SERVE_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] }
    )
    let serveOutput = ''
    serve.stdout!.on('data', (c) => (serveOutput += c))
    serve.stderr!.on('data', (c) => (serveOutput += c))
    const served = new Promise((resolve) => serve.once('exit', resolve))
    try {
      await waitFor(async () => serveOutput.includes('listening on'), { timeoutMs: 60_000 })
      const fixture = { url: `https://127.0.0.1:${port}`, token, ca: tls.ca }
      const { driver } = useAzure(fixture)
      const kek = kekName('azcrash')
      await driver.createKey(kek)
      const expected = await seed(kek, 1200)

      const rotate = spawnAce(
        ['rotate:kek', kek, '--batch-size', '50', '--sleep-ms', '25', '--json'],
        {
          KMS_DRIVER: 'azure-keyvault',
          AZURE_KEYVAULT_URL: fixture.url,
          AZURE_KEYVAULT_TOKEN: token,
          AZURE_KEYVAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
          NODE_EXTRA_CA_CERTS: tls.files.ca,
        }
      )
      const running = await waitFor(
        async () => {
          const row = await db.from('key_rotations').where('kek_name', kek).first()
          return row && Number(row.rewrapped) >= 200 ? row : null
        },
        { timeoutMs: 90_000 }
      ).catch((error: Error) => {
        throw new Error(`${error.message}: ${rotate.output().slice(-500)}`)
      })
      rotate.child.kill('SIGKILL')
      await rotate.exited
      assert.equal(running.status, 'running')

      const afterCrash = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
      assert.equal(afterCrash.status, 'running', 'the killed run stays resumable')
      const counts = await versionCounts(kek)
      assert.isAbove(counts[1] ?? 0, 0, `killed too late: ${rotate.output().slice(-300)}`)
      assert.equal(Number(afterCrash.rewrapped), counts[2], 'counter matches rows committed')
      await assertAllDecrypt(assert, expected)

      const rotations = await app.container.make(KeyRotationService)
      const resumed = await rotations.rotate(kek, { resume: true, batchSize: 200 })
      assert.equal(resumed.id, String(afterCrash.id))
      assert.equal(resumed.status, 'completed')
      assert.equal(resumed.targetVersion, 2)
      assert.equal(resumed.rewrapped, 1200)
      assert.deepEqual(await versionCounts(kek), { 2: 1200 })
      const info = await driver.readKey(kek)
      assert.equal(info!.latestVersion, 2, 'Step A ran once: one new Key Vault version')
      await assertAllDecrypt(assert, expected)
      await driver.close()
    } finally {
      serve.kill('SIGTERM')
      await served
    }
  }).timeout(180_000)
})
