import { test } from '@japa/runner'
import {
  DEFAULT_LATENCY_BUDGET,
  observeLatencies,
  percentile,
  restAfter,
  startBudget,
  type LatencyBudgetState,
} from '#services/latency_budget'

/** `n` synthetic latencies around `ms` (deterministic spread ±10 %). */
function samples(n: number, ms: number): number[] {
  return Array.from({ length: n }, (_, i) => ms * (0.9 + ((i * 37) % 21) / 100))
}

/** Feeds one window of 2 s (the default) of `n` samples at `ms`, from `now`. */
function window(state: LatencyBudgetState, now: number, n: number, ms: number, baseline = 10) {
  const mid = observeLatencies(state, samples(n, ms), now + 1_000, baseline)
  return observeLatencies(mid, [], now + 2_000, baseline)
}

test.group('latency budget controller (pure)', () => {
  test('percentile: nearest rank; null when empty', ({ assert }) => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1)
    assert.equal(percentile(values, 99), 99)
    assert.equal(percentile(values, 50), 50)
    assert.equal(percentile([7], 99), 7)
    assert.isNull(percentile([], 99))
  })

  test('starts at the fixed nice ratio of today (4 ⇔ duty 0.2) and holds within a window', ({
    assert,
  }) => {
    const state = startBudget(0)
    assert.equal(state.duty, 0.2)
    const later = observeLatencies(state, samples(200, 50), 1_999, 10)
    assert.equal(later.duty, 0.2, 'no judgement before the window is over')
    assert.lengthOf(later.samples, 200)
  })

  test('speeds up window after window while p99 stays within 1.2× the idle baseline, up to full speed', ({
    assert,
  }) => {
    let state = startBudget(0)
    const duties: number[] = []
    for (let w = 0; w < 20; w++) {
      state = window(state, w * 2_000, 160, 10) // p99 ≈ 11 ms ≤ 12 ms
      duties.push(state.duty)
    }
    assert.equal(state.last, 'faster')
    assert.isTrue(
      duties.every((d, i) => i === 0 || d >= duties[i - 1]),
      'never slows down within budget'
    )
    assert.equal(state.duty, DEFAULT_LATENCY_BUDGET.maxDuty)
    assert.equal(restAfter(100, state.duty), 0, 'no rest at full speed')
  })

  test('halves the duty at once when the budget breaks, never below the floor', ({ assert }) => {
    let state = startBudget(0)
    for (let w = 0; w < 4; w++) state = window(state, w * 2_000, 160, 10)
    const before = state.duty
    state = window(state, 8_000, 160, 20) // p99 ≈ 22 ms > 12 ms
    assert.equal(state.last, 'slower')
    assert.closeTo(state.duty, before / 2, 1e-9)
    assert.isAbove(state.lastP99!, 12)
    for (let w = 5; w < 20; w++) state = window(state, w * 2_000, 160, 40)
    assert.equal(state.duty, DEFAULT_LATENCY_BUDGET.minDuty)
  })

  test('settles just under the budget against a foreground that slows as the duty grows', ({
    assert,
  }) => {
    // A synthetic plant: the foreground's p99 grows with the duty (idle 10 ms, 2× at full speed).
    let state = startBudget(0)
    let within = 0
    for (let w = 0; w < 100; w++) {
      const p99 = 10 * (1 + state.duty)
      state = window(state, w * 2_000, 160, p99 / 1.1)
      if (state.lastP99! <= 12) within++
    }
    assert.isAtLeast(within, 95, 'the windows stay within the budget')
    assert.isAbove(state.duty, 0.15, 'close to the most the budget allows (0.2 in this plant)')
    assert.isAtMost(state.duty, 0.2 + 1e-9, 'not past it')
  })

  test('one slow burst among good windows holds the duty; it does not halve it', ({ assert }) => {
    // 400 requests per window; a database stall makes 4 of one window slow (1 %: over the
    // set-point, under the budget over the horizon).
    let state = startBudget(0)
    for (let w = 0; w < 6; w++) state = window(state, w * 2_000, 400, 10)
    const before = state.duty
    const burst = samples(396, 10).concat([40, 45, 50, 55])
    state = observeLatencies(state, burst, 12_000 + 1_000, 10)
    state = observeLatencies(state, [], 14_000, 10)
    assert.equal(state.last, 'hold')
    assert.equal(state.duty, before)
    assert.closeTo(state.slowShare!, 4 / 2_400, 1e-9)
  })

  test("keeps the run's own p99 within the budget against a tail that grows with the duty", ({
    assert,
  }) => {
    // A heavy-tailed plant: 0.2 % of requests slow when idle, +2 % × duty while the run works;
    // slow requests take 3× the idle p99, the others 50–95 % of it. Deterministic (LCG).
    let seed = 42
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
      return seed / 2_147_483_648
    }
    let state = startBudget(0)
    const all: number[] = []
    let dutySum = 0
    for (let w = 0; w < 300; w++) {
      const slowShare = 0.002 + 0.02 * state.duty
      const batch = Array.from({ length: 400 }, () =>
        random() < slowShare ? 30 : 10 * (0.5 + 0.45 * random())
      )
      all.push(...batch)
      dutySum += state.duty
      state = observeLatencies(state, batch, w * 2_000 + 1_000, 10)
      state = observeLatencies(state, [], (w + 1) * 2_000, 10)
    }
    // The budget allows the duty up to 0.4 (1 % slow); the set-point aims at 0.2.
    assert.isAtMost(percentile(all, 99)!, 12, "the whole run's p99 is within 1.2× the baseline")
    assert.isAbove(dutySum / 300, 0.1, 'and the run does not crawl at its floor')
  })

  test('a window with too few requests (idle foreground) speeds up', ({ assert }) => {
    const state = window(startBudget(0), 0, 5, 500)
    assert.equal(state.last, 'faster')
    assert.isAbove(state.duty, 0.2)
    assert.isNull(state.lastP99)
  })

  test('restAfter: the rest that keeps the duty (nice ratio r ⇔ rest r × busy)', ({ assert }) => {
    assert.equal(restAfter(100, 0.2), 400)
    assert.equal(restAfter(100, 0.5), 100)
    assert.equal(restAfter(100, 1), 0)
    assert.equal(restAfter(-5, 0.5), 0)
  })

  test('ignores samples that are not latencies', ({ assert }) => {
    const state = observeLatencies(startBudget(0), [Number.NaN, -1, Infinity, 3], 10, 10)
    assert.deepEqual(state.samples, [3])
  })
})
