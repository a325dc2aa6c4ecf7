import { test } from '@japa/runner'
import { TokenBucket, type RateLimiterClock } from '#kms/rate_limiter'

/**
 * A virtual clock: sleeping moves time forward to the sleeper's wake-up
 * (never back), so concurrent sleepers end at the latest one.
 */
function virtualClock() {
  let now = 0
  const sleeps: number[] = []
  const clock: RateLimiterClock = {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms)
      const wake = now + ms
      await Promise.resolve()
      now = Math.max(now, wake)
    },
  }
  return { clock, sleeps, advance: (ms: number) => (now += ms), time: () => now }
}

test.group('TokenBucket (requests/s ceiling)', () => {
  test('the burst goes at once, then one token per 1/rate seconds', async ({ assert }) => {
    const { clock, sleeps } = virtualClock()
    const bucket = new TokenBucket({ ratePerSecond: 100, burst: 5 }, clock)
    for (let i = 0; i < 5; i++) await bucket.acquire()
    assert.deepEqual(sleeps, [])
    await bucket.acquire()
    assert.deepEqual(sleeps, [10])
  })

  test('concurrent callers share the ceiling: N calls take (N - burst) / rate', async ({
    assert,
  }) => {
    const { clock, time } = virtualClock()
    const bucket = new TokenBucket({ ratePerSecond: 50, burst: 5 }, clock)
    const done: number[] = []
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 5; i++) {
          await bucket.acquire()
          done.push(time())
        }
      })
    )
    assert.lengthOf(done, 40)
    // 40 requests, 5 free, then 35 at 50/s: 700 ms of virtual time, never less.
    assert.closeTo(time(), 700, 1e-6)
    // In any window of 1 s at most rate + burst requests were let through.
    const sorted = [...done].sort((a, b) => a - b)
    for (const start of sorted) {
      const within = sorted.filter((t) => t >= start && t < start + 1000).length
      assert.isAtMost(within, 55)
    }
  })

  test('tokens refill while idle, up to the burst only', async ({ assert }) => {
    const { clock, sleeps, advance } = virtualClock()
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 2 }, clock)
    await bucket.acquire()
    await bucket.acquire()
    advance(10_000)
    await bucket.acquire()
    await bucket.acquire()
    assert.deepEqual(sleeps, [])
    await bucket.acquire()
    assert.deepEqual(sleeps, [100])
  })

  test('rate 0 means no ceiling', async ({ assert }) => {
    const { clock, sleeps } = virtualClock()
    const bucket = new TokenBucket({ ratePerSecond: 0 }, clock)
    assert.isTrue(bucket.unlimited)
    for (let i = 0; i < 1000; i++) await bucket.acquire()
    assert.deepEqual(sleeps, [])
  })

  test('reservations queue FIFO; a cost takes that many tokens (an Azure rewrap row: two)', ({
    assert,
  }) => {
    const { clock } = virtualClock()
    const fifo = new TokenBucket({ ratePerSecond: 4, burst: 1 }, clock)
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => fifo.reserve()),
      [0, 250, 500, 750, 1000]
    )
    const costly = new TokenBucket({ ratePerSecond: 100, burst: 1 }, clock)
    assert.equal(costly.reserve(), 0)
    assert.equal(costly.reserve(2), 20)
  })

  test('the default burst is a tenth of a second: no 1 s window above 1.1 × the rate', ({
    assert,
  }) => {
    const { clock } = virtualClock()
    assert.equal(new TokenBucket({ ratePerSecond: 200 }, clock).burst, 20)
    assert.equal(new TokenBucket({ ratePerSecond: 5 }, clock).burst, 1)
    assert.throws(() => new TokenBucket({ ratePerSecond: Number.NaN }, clock), /≥ 0/)
  })
})
