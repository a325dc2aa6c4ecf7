import { test } from '@japa/runner'
import { SingleFlightCache } from '#services/single_flight_cache'

test.group('SingleFlightCache', () => {
  test('concurrent callers share one run; the result is kept for ttlMs', async ({ assert }) => {
    let now = 1000
    const cache = new SingleFlightCache<number>(() => now)
    let runs = 0
    let release!: (value: number) => void
    const compute = () => {
      runs++
      return new Promise<number>((resolve) => (release = resolve))
    }
    const waiting = Array.from({ length: 8 }, () => cache.get(5000, compute))
    release(42)
    assert.deepEqual(await Promise.all(waiting), Array(8).fill(42))
    assert.equal(runs, 1)
    now += 4999
    assert.equal(await cache.get(5000, async () => ++runs), 42)
    now += 1
    assert.equal(await cache.get(5000, async () => ++runs), 2)
  })

  test('a failed run is not kept; clear forgets the value', async ({ assert }) => {
    const cache = new SingleFlightCache<number>(() => 0)
    await assert.rejects(() => cache.get(5000, () => Promise.reject(new Error('down'))), 'down')
    assert.equal(await cache.get(5000, async () => 7), 7)
    cache.clear()
    assert.equal(await cache.get(5000, async () => 8), 8)
  })
})
