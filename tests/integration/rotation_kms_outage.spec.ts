import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { E_KMS_UNAVAILABLE } from '#app/errors'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { KeyRotationService } from '#services/key_rotation_service'
import { createKek, kekName, kmsDriver, seed, versionCounts } from '#tests/helpers/rotation'

/** Instant sleeps that move a virtual clock. */
class VirtualClock extends Clock {
  #offset = 0
  slept: number[] = []
  now() {
    return new Date(Date.now() + this.#offset)
  }
  async sleep(ms: number) {
    this.slept.push(ms)
    this.#offset += ms
  }
}

/**
 * A KMS outage the real KMS cannot be asked for on cue: rewrap fails with
 * E_KMS_UNAVAILABLE (as the vault driver does once its own retries are
 * spent) while `failures` > 0.
 */
function flakyManager(real: KmsDriver, state: { failures: number; rewrapCalls: number }) {
  const rewrap: KmsDriver['rewrap'] = async (name, wrapped, version) => {
    state.rewrapCalls++
    if (state.failures > 0) {
      state.failures--
      throw new E_KMS_UNAVAILABLE([], { cause: new Error('status 503: Vault is sealed') })
    }
    return real.rewrap(name, wrapped, version)
  }
  const driver = new Proxy(real, {
    get(target, property) {
      if (property === 'rewrap') return rewrap
      const value = (target as any)[property]
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return new KmsManager({ default: 'flaky', drivers: { flaky: () => driver } })
}

test.group('rotation: KMS outages', (group) => {
  group.each.teardown(() => {
    app.container.restoreAll()
  })

  test('a short outage is backed off and the run completes', async ({ assert }) => {
    const kek = kekName('blip')
    await createKek(kek)
    await seed(kek, 300)
    const real = await kmsDriver(kek)
    const state = { failures: 3, rewrapCalls: 0 }
    const clock = new VirtualClock()
    app.container.swap(KmsManager, () => flakyManager(real, state))
    app.container.swap(Clock, () => clock)

    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { batchSize: 100, niceRatio: 0 })
    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 300)
    assert.equal(state.rewrapCalls, 6)
    assert.lengthOf(clock.slept, 3)
    assert.isTrue(
      clock.slept.every((ms, i) => i === 0 || ms >= clock.slept[i - 1]),
      'backs off'
    )
    assert.deepEqual(await versionCounts(kek), { 2: 300 })
  })

  test('an outage longer than the bound pauses the run as failed; resume finishes it', async ({
    assert,
  }) => {
    const kek = kekName('outage')
    await createKek(kek)
    await seed(kek, 300)
    const real = await kmsDriver(kek)
    const state = { failures: 0, rewrapCalls: 0 }
    app.container.swap(KmsManager, () => flakyManager(real, state))
    app.container.swap(Clock, () => new VirtualClock())

    const rotations = await app.container.make(KeyRotationService)
    try {
      await rotations.rotate(kek, {
        batchSize: 100,
        onProgress: () => {
          state.failures = 1_000_000
        },
      })
      assert.fail('expected E_KMS_UNAVAILABLE')
    } catch (error) {
      assert.equal((error as any).code, 'E_KMS_UNAVAILABLE')
    }
    const [failed] = await rotations.list({ kek })
    assert.equal(failed.status, 'failed')
    assert.include(failed.lastError!, 'E_KMS_UNAVAILABLE')
    // The batch already rewrapped when the outage began is still committed.
    const counts = await versionCounts(kek)
    assert.equal(failed.rewrapped, counts[2])
    assert.isAbove(counts[1], 0)
    assert.equal(counts[1] + counts[2], 300)

    state.failures = 0
    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.id, failed.id)
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.rewrapped, 300)
    assert.deepEqual(await versionCounts(kek), { 2: 300 })
  })
})
