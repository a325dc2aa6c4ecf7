import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { E_KMS_UNAVAILABLE } from '#app/errors'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { ReencryptService } from '#services/reencrypt_service'
import { rejectsWith } from '#tests/helpers/errors'
import { assertAllDecrypt, createKek, kekName, kmsDriver, seed } from '#tests/helpers/rotation'

/** Instant sleeps that move a virtual clock, recorded. */
class RecordingClock extends Clock {
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
 * A KMS outage the real KMS cannot be asked for on cue: unwrap fails with
 * E_KMS_UNAVAILABLE (as a driver does once its own retries are spent)
 * while `failures` > 0; every other call goes to the real driver.
 */
function flakyManager(real: KmsDriver, state: { failures: number; unwrapCalls: number }) {
  const unwrap: KmsDriver['unwrap'] = async (name, wrapped) => {
    state.unwrapCalls++
    if (state.failures > 0) {
      state.failures--
      throw new E_KMS_UNAVAILABLE([], { cause: new Error('status 503: Vault is sealed') })
    }
    return real.unwrap(name, wrapped)
  }
  const driver = new Proxy(real, {
    get(target, property) {
      if (property === 'unwrap') return unwrap
      const value = (target as any)[property]
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return new KmsManager({ default: 'flaky', drivers: { flaky: () => driver } })
}

async function rowsUnder(kek: string) {
  const [row] = await db.from('vault_entries').where('kek_name', kek).count('* as n')
  return Number(row.n)
}

test.group('reencrypt: KMS outages (the engine bound, as for rotation)', (group) => {
  group.each.teardown(() => {
    app.container.restoreAll()
  })

  test('a short outage is backed off and the run completes', async ({ assert }) => {
    const from = kekName('re-blip')
    const to = kekName('re-blip-to')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 300)
    const real = await kmsDriver(from)
    const state = { failures: 3, unwrapCalls: 0 }
    const clock = new RecordingClock()
    app.container.swap(KmsManager, () => flakyManager(real, state))
    app.container.swap(Clock, () => clock)

    const service = await app.container.make(ReencryptService)
    const run = await service.reencrypt(from, to, { batchSize: 100, niceRatio: 0 })
    assert.equal(run.status, 'completed')
    assert.equal(run.reencrypted, 300)
    assert.equal(run.failed, 0, 'an outage is not a per-row failure')
    assert.equal(state.unwrapCalls, 6, 'three refused calls, then one per batch')
    assert.lengthOf(clock.slept, 3)
    assert.isTrue(
      clock.slept.every((ms, i) => i === 0 || ms >= clock.slept[i - 1]),
      'backs off'
    )
    assert.equal(await rowsUnder(from), 0)
    app.container.restoreAll()
    await assertAllDecrypt(assert, expected)
  })

  test('an outage longer than rotation.kmsOutageMs ends the run failed; rerunning finishes it', async ({
    assert,
  }) => {
    const from = kekName('re-outage')
    const to = kekName('re-outage-to')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 300)
    const real = await kmsDriver(from)
    const state = { failures: 0, unwrapCalls: 0 }
    const clock = new RecordingClock()
    app.container.swap(KmsManager, () => flakyManager(real, state))
    app.container.swap(Clock, () => clock)

    const service = await app.container.make(ReencryptService)
    await rejectsWith(
      service.reencrypt(from, to, {
        batchSize: 100,
        niceRatio: 0,
        onProgress: () => {
          state.failures = 1_000_000
        },
      }),
      'E_KMS_UNAVAILABLE'
    )
    const bound = app.config.get<any>('rewrap').rotation.kmsOutageMs
    // Virtual time: the backoff waited up to the bound (less the real time the calls took).
    const waited = clock.slept.reduce((sum, ms) => sum + ms, 0)
    assert.isAtMost(waited, bound)
    assert.isAtLeast(waited, bound - 30_000, 'kept trying until the bound')
    const failed = (await service.findUnfinished(from))!
    assert.equal(failed.status, 'failed')
    assert.include(failed.lastError!, 'E_KMS_UNAVAILABLE')
    // The batch committed before the outage stays committed.
    assert.equal(failed.reencrypted, 100)
    assert.equal(await rowsUnder(from), 200)

    state.failures = 0
    const resumed = await service.reencrypt(from, to, { niceRatio: 0 })
    assert.equal(resumed.id, failed.id)
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.reencrypted, 300)
    app.container.restoreAll()
    await assertAllDecrypt(assert, expected)
  })
})
