import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { KmsManager } from '#kms/kms_manager'
import { KeyRotationService } from '#services/key_rotation_service'
import { assertAllDecrypt, kekName, seed, versionCounts } from '#tests/helpers/rotation'
import { startTransitServer, vaultDriverFor, type TransitFixture } from '#tests/helpers/transit'

test.group('rotation over the vault driver (node-vault → in-process transit server)', (group) => {
  let fixture: TransitFixture

  group.setup(async () => {
    fixture = await startTransitServer()
    return () => fixture.close()
  })
  group.each.teardown(() => app.container.restoreAll())

  function useVault(options: { batchSize?: number } = {}) {
    const { driver, retryDeps } = vaultDriverFor(fixture, { batchSize: options.batchSize ?? 50 })
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    )
    return { driver, retryDeps }
  }

  test('the rotation path only calls rewrap: no DEK unwrapped, no payload decrypted', async ({
    assert,
  }) => {
    const { driver } = useVault()
    const kek = kekName('vault')
    await driver.createKey(kek)
    const expected = await seed(kek, 400)

    const from = fixture.server.requestLog.length
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { batchSize: 100 })
    const calls = fixture.server.requestLog.slice(from).map((e) => `${e.method} ${e.path}`)

    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 400)
    assert.deepEqual(await versionCounts(kek), { 2: 400 })
    const kinds = new Set(calls.map((c) => c.replace(`/${kek}`, '/:name')))
    assert.deepEqual(
      [...kinds].sort(),
      [
        'GET /v1/transit/keys/:name',
        'POST /v1/transit/keys/:name/rotate',
        'POST /v1/transit/rewrap/:name',
      ].sort()
    )
    // 400 rows in batches of 100, each chunked by the driver into requests of 50.
    assert.equal(calls.filter((c) => c.includes('/rewrap/')).length, 8)
    await assertAllDecrypt(assert, expected)
  })

  test('429 (with Retry-After) and 503 during a run are backed off; the run completes', async ({
    assert,
  }) => {
    const { driver, retryDeps } = useVault()
    const kek = kekName('vault')
    await driver.createKey(kek)
    const expected = await seed(kek, 300)
    fixture.server.injectFaults([
      { status: 429, retryAfter: 0.5, pathIncludes: '/rewrap/' },
      { status: 503, pathIncludes: '/rewrap/' },
      { status: 503, pathIncludes: '/rewrap/' },
    ])
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { batchSize: 100 })

    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 300)
    assert.equal(run.failed, 0)
    assert.include(retryDeps.sleeps, 500, 'Retry-After honoured')
    assert.isAtLeast(retryDeps.sleeps.length, 3)
    assert.deepEqual(await versionCounts(kek), { 2: 300 })
    await assertAllDecrypt(assert, expected)
  })
})
