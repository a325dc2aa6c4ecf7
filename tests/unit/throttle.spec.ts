import { test } from '@japa/runner'
import { FakeClock } from '#tests/helpers/clock'
import { ForegroundDetector } from '#services/foreground_detector'
import { Throttle } from '#services/throttle'

test.group('throttle', () => {
  test('sleeps the fixed delay after every batch', async ({ assert }) => {
    const clock = new FakeClock()
    const throttle = new Throttle(clock, { sleepMs: 100, maxRate: 0, niceRatio: 0 })
    await throttle.afterBatch(1000)
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [100, 100])
  })

  test('keeps the average rate under the ceiling', async ({ assert }) => {
    const clock = new FakeClock()
    const throttle = new Throttle(clock, { sleepMs: 0, maxRate: 2000, niceRatio: 0 })
    clock.t += 100 // a batch of 1000 rows took 100 ms: 500 ms are owed at 2000 rows/s
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [400])
    clock.t += 600 // slower than the ceiling: no sleep
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [400])
  })

  test('no limits, no sleep', ({ assert }) => {
    const throttle = new Throttle(new FakeClock(), { sleepMs: 0, maxRate: 0, niceRatio: 0 })
    assert.equal(throttle.delayAfter(5000), 0)
  })

  test('nice ratio: sleeps ratio × the batch time only while foreground work is seen', async ({
    assert,
  }) => {
    const clock = new FakeClock()
    let busy = true
    const throttle = new Throttle(
      clock,
      { sleepMs: 0, maxRate: 0, niceRatio: 4 },
      { active: async () => busy }
    )
    clock.t += 50 // the batch took 50 ms
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [200])
    assert.isTrue(throttle.paced)
    busy = false
    clock.t += 30 // counted from the end of the last sleep
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [200], 'nobody else on the database: full speed')
    assert.isFalse(throttle.paced)
    busy = true
    clock.t += 30
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [200, 120])
  })

  test('nice ratio 0 never asks the database; the longest limit wins', async ({ assert }) => {
    const clock = new FakeClock()
    let asked = 0
    const off = new Throttle(
      clock,
      { sleepMs: 0, maxRate: 0, niceRatio: 0 },
      { active: async () => ++asked > 0 }
    )
    clock.t += 50
    await off.afterBatch(1000)
    assert.equal(asked, 0)
    assert.deepEqual(clock.slept, [])
    const both = new Throttle(
      clock,
      { sleepMs: 300, maxRate: 0, niceRatio: 2 },
      { active: async () => true }
    )
    clock.t += 100
    await both.afterBatch(1000)
    assert.deepEqual(clock.slept, [300], 'max(300 fixed, 2 × 100 nice)')
  })
})

test.group('foreground detector', () => {
  test('samples at most once per interval; a failed sample counts as foreground', async ({
    assert,
  }) => {
    const clock = new FakeClock()
    const answers: Array<number | Error> = [0, 2, new Error('db down'), 0]
    const windows: number[] = []
    const detector = new ForegroundDetector(
      clock,
      { intervalMs: 500, windowMs: 1000 },
      async (w) => {
        windows.push(w)
        const next = answers.shift()!
        if (next instanceof Error) throw next
        return next
      }
    )
    assert.isFalse(await detector.active())
    clock.t += 200
    assert.isFalse(await detector.active(), 'cached within the interval')
    clock.t += 300
    assert.isTrue(await detector.active())
    clock.t += 500
    assert.isTrue(await detector.active(), 'sampling failed')
    clock.t += 500
    assert.isFalse(await detector.active())
    assert.deepEqual(windows, [1000, 1000, 1000, 1000])
  })
})
