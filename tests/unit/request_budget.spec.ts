import { test } from '@japa/runner'
import { RequestBudget } from '#kms/request_budget'

/** A budget on a fake clock whose sleeps advance that clock. */
function fakeBudget(ratePerSecond: number, burst?: number) {
  let now = 0
  const sleeps: number[] = []
  const budget = new RequestBudget({
    ratePerSecond,
    burst,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms)
    },
  })
  return { budget, sleeps, advance: (ms: number) => (now += ms) }
}

test.group('RequestBudget (token bucket)', () => {
  test('a full bucket lets a burst through, then paces at the rate', async ({ assert }) => {
    const { budget, sleeps } = fakeBudget(10, 3)
    for (let i = 0; i < 6; i++) await budget.take()
    // 3 at once, then one every 100 ms of debt: 100, 200, 300 ms.
    assert.deepEqual(sleeps, [100, 200, 300])
  })

  test('concurrent callers share one budget, FIFO', async ({ assert }) => {
    const { budget } = fakeBudget(4, 1)
    const waits = [1, 2, 3, 4, 5].map(() => budget.reserve())
    assert.deepEqual(waits, [0, 250, 500, 750, 1000])
  })

  test('tokens refill with time, never above the burst', ({ assert }) => {
    const { budget, advance } = fakeBudget(10, 2)
    assert.equal(budget.reserve(2), 0)
    advance(100)
    assert.equal(budget.reserve(), 0)
    advance(10_000)
    assert.equal(budget.reserve(2), 0)
    assert.equal(budget.reserve(), 100)
  })

  test('a rewrap costs two: unwrap and wrap each take one', ({ assert }) => {
    const { budget } = fakeBudget(100, 1)
    assert.equal(budget.reserve(), 0)
    assert.equal(budget.reserve(2), 20)
  })

  test('a rate that is not positive is refused', ({ assert }) => {
    assert.throws(() => new RequestBudget({ ratePerSecond: 0 }), /positive/)
    assert.throws(() => new RequestBudget({ ratePerSecond: Number.NaN }), /positive/)
  })
})
