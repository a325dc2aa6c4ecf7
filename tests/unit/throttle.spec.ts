import { test } from '@japa/runner'
import { Clock } from '#services/clock'
import { Throttle } from '#services/throttle'

class FakeClock extends Clock {
  t = 1_000_000
  slept: number[] = []
  now() {
    return new Date(this.t)
  }
  async sleep(ms: number) {
    this.slept.push(ms)
    this.t += ms
  }
}

test.group('throttle', () => {
  test('sleeps the fixed delay after every batch', async ({ assert }) => {
    const clock = new FakeClock()
    const throttle = new Throttle(clock, 100, 0)
    await throttle.afterBatch(1000)
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [100, 100])
  })

  test('keeps the average rate under the ceiling', async ({ assert }) => {
    const clock = new FakeClock()
    const throttle = new Throttle(clock, 0, 2000)
    clock.t += 100 // a batch of 1000 rows took 100 ms: 500 ms are owed at 2000 rows/s
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [400])
    clock.t += 600 // slower than the ceiling: no sleep
    await throttle.afterBatch(1000)
    assert.deepEqual(clock.slept, [400])
  })

  test('no limits, no sleep', ({ assert }) => {
    const throttle = new Throttle(new FakeClock(), 0, 0)
    assert.equal(throttle.delayAfter(5000), 0)
  })
})
