import { test } from '@japa/runner'
import { backoffDelay, withRetry, type RetryOptions } from '#kms/retry'

const OPTIONS: RetryOptions = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 }

test.group('retry: backoff and jitter', () => {
  test('full jitter stays within [0, min(max, base·2^(n-1)))', ({ assert }) => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const ceiling = Math.min(OPTIONS.maxDelayMs, OPTIONS.baseDelayMs * 2 ** (attempt - 1))
      assert.equal(
        backoffDelay(attempt, OPTIONS, () => 0),
        0
      )
      assert.equal(
        backoffDelay(attempt, OPTIONS, () => 0.5),
        Math.floor(ceiling / 2)
      )
      const top = backoffDelay(attempt, OPTIONS, () => 0.999_999)
      assert.isBelow(top, ceiling)
      assert.isAtLeast(top, ceiling - 1)
    }
  })

  test('the ceiling doubles per attempt until maxDelayMs', ({ assert }) => {
    const almostOne = () => 0.999_999
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, OPTIONS, almostOne)),
      [99, 199, 399, 799, 999, 999]
    )
  })

  test('Retry-After is honoured, bounded by 4 × maxDelayMs', ({ assert }) => {
    assert.equal(
      backoffDelay(1, OPTIONS, () => 0.5, 2_000),
      2_000
    )
    assert.equal(
      backoffDelay(1, OPTIONS, () => 0.5, 0),
      50
    )
    assert.equal(
      backoffDelay(1, OPTIONS, () => 0.5, 60_000),
      4_000
    )
  })
})

test.group('retry: withRetry', () => {
  test('retries until success, sleeping between attempts', async ({ assert }) => {
    const sleeps: number[] = []
    let calls = 0
    const result = await withRetry(
      async (attempt) => {
        calls++
        if (attempt < 3) throw new Error('transient')
        return 'ok'
      },
      () => ({ retry: true }),
      OPTIONS,
      { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 }
    )
    assert.equal(result, 'ok')
    assert.equal(calls, 3)
    assert.deepEqual(sleeps, [50, 100])
  })

  test('stops after maxAttempts with the last error', async ({ assert }) => {
    let calls = 0
    const sleeps: number[] = []
    await assert.rejects(
      () =>
        withRetry(
          async () => {
            calls++
            throw new Error(`failure ${calls}`)
          },
          () => ({ retry: true }),
          { ...OPTIONS, maxAttempts: 3 },
          { sleep: async (ms) => void sleeps.push(ms), random: () => 0 }
        ),
      'failure 3'
    )
    assert.equal(calls, 3)
    assert.lengthOf(sleeps, 2)
  })

  test('does not retry when classify says no', async ({ assert }) => {
    let calls = 0
    await assert.rejects(
      () =>
        withRetry(
          async () => {
            calls++
            throw new Error('permanent')
          },
          () => ({ retry: false }),
          OPTIONS,
          { sleep: async () => {}, random: () => 0 }
        ),
      'permanent'
    )
    assert.equal(calls, 1)
  })

  test('reports each retry with its delay', async ({ assert }) => {
    const seen: Array<[number, number]> = []
    await withRetry(
      async (attempt) => {
        if (attempt === 1) throw new Error('once')
        return true
      },
      () => ({ retry: true, afterMs: 300 }),
      OPTIONS,
      { sleep: async () => {}, random: () => 0 },
      (_error, attempt, delay) => seen.push([attempt, delay])
    )
    assert.deepEqual(seen, [[1, 300]])
  })
})
