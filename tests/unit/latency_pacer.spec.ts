import { test } from '@japa/runner'
import { FakeClock } from '#tests/helpers/clock'
import { DEFAULT_LATENCY_BUDGET } from '#services/latency_budget'
import {
  LatencyPacer,
  STUCK_WINDOWS,
  type LatencyPacerOptions,
  type LatencySignal,
  type PacingSnapshot,
} from '#services/latency_pacer'
import { RequestLatencyRecorder } from '#services/request_latency_recorder'
import { Throttle } from '#services/throttle'

/**
 * A foreground whose request latency the test sets: every read returns
 * `perRead` samples at `ms` (±10 %, deterministic), or the idle value while
 * the loop rests (`resting` is set by the pacer's sleeps through the clock).
 */
class ScriptedSignal implements LatencySignal {
  ms = 10
  idleMs = 10
  perRead = 60
  resting = false
  reads = 0
  async read() {
    this.reads++
    const at = this.resting ? this.idleMs : this.ms
    return Array.from({ length: this.perRead }, (_, i) => at * (0.9 + ((i * 37) % 21) / 100))
  }
}

/** A clock whose sleeps mark the signal as resting (the baseline is read during them). */
class RestingClock extends FakeClock {
  constructor(private signal: ScriptedSignal) {
    super()
  }
  async sleep(ms: number) {
    this.signal.resting = true
    await super.sleep(ms)
  }
  markWorking() {
    this.signal.resting = false
  }
}

const OPTIONS: LatencyPacerOptions = {
  ...DEFAULT_LATENCY_BUDGET,
  windowMs: 2_000,
  minSamples: 20,
  pollMs: 500,
  baselineMs: 2_000,
  rebaselineMs: 60_000,
}

/** One batch of `busyMs` then the pacer's judgement (what the throttle does). */
async function batch(clock: RestingClock, pacer: LatencyPacer, busyMs = 250) {
  clock.markWorking()
  clock.t += busyMs
  return pacer.afterBatch()
}

test.group('latency pacer (fake clock)', () => {
  test('measures the idle baseline while resting once traffic shows, in bounded steps', async ({
    assert,
  }) => {
    const signal = new ScriptedSignal()
    const clock = new RestingClock(signal)
    const pacer = new LatencyPacer(clock, signal, OPTIONS)
    signal.idleMs = 8
    signal.ms = 30
    await batch(clock, pacer)
    assert.isNull(pacer.snapshot().baselineP99Ms, 'the first batch sees the traffic')
    assert.deepEqual(clock.slept, [])
    await batch(clock, pacer)
    assert.closeTo(pacer.snapshot().baselineP99Ms!, 8 * 1.1, 0.01)
    // 500 ms to drop the rows of the working time, then 2,000 ms of baseline in 500-ms polls.
    assert.deepEqual(clock.slept, [500, 500, 500, 500, 500])
  })

  test('speeds up while the foreground stays within 1.2× its baseline and backs off at once when over', async ({
    assert,
  }) => {
    const signal = new ScriptedSignal()
    const clock = new RestingClock(signal)
    const sink: PacingSnapshot[] = []
    const pacer = new LatencyPacer(clock, signal, OPTIONS, async (s) => {
      sink.push(s)
    })
    signal.idleMs = 10
    signal.ms = 10.5 // within budget (p99 ≈ 11.6 ms ≤ 1.2 × 11 ms)
    const duties: number[] = []
    for (let i = 0; i < 120; i++) duties.push(await batch(clock, pacer))
    assert.isAbove(duties.at(-1)!, 0.9, 'sped up from 0.2 toward full speed')
    assert.isTrue(duties.every((d, i) => i === 0 || d >= duties[i - 1]))
    assert.isTrue(sink.every((s) => s.judgement !== 'slower'))

    const before = pacer.duty
    signal.ms = 30 // p99 ≈ 33 ms: over budget
    let after = before
    for (let i = 0; i < 20 && after === before; i++) after = await batch(clock, pacer)
    assert.closeTo(after, before / 2, 1e-9, 'halved at the first window over budget')
    assert.equal(sink.at(-1)!.judgement, 'slower')
    assert.isAbove(sink.at(-1)!.p99Ms!, 1.2 * sink.at(-1)!.baselineP99Ms!)
  })

  test('no foreground traffic: no baseline, the duty grows to full speed', async ({ assert }) => {
    const signal = new ScriptedSignal()
    signal.perRead = 0
    const clock = new RestingClock(signal)
    const pacer = new LatencyPacer(clock, signal, OPTIONS)
    for (let i = 0; i < 200; i++) await batch(clock, pacer)
    assert.equal(pacer.duty, 1)
    assert.isNull(pacer.snapshot().baselineP99Ms)
  })

  test('measures the baseline again every rebaselineMs', async ({ assert }) => {
    const signal = new ScriptedSignal()
    const clock = new RestingClock(signal)
    const pacer = new LatencyPacer(clock, signal, OPTIONS)
    signal.idleMs = 10
    await batch(clock, pacer)
    await batch(clock, pacer)
    assert.closeTo(pacer.snapshot().baselineP99Ms!, 11, 0.01)
    signal.idleMs = 20
    signal.ms = 20
    clock.t += OPTIONS.rebaselineMs
    await batch(clock, pacer)
    assert.closeTo(pacer.snapshot().baselineP99Ms!, 22, 0.01)
  })

  test('takes the first baseline from the requests served before the run, without a rest, when it may', async ({
    assert,
  }) => {
    const signal = new ScriptedSignal()
    const clock = new RestingClock(signal)
    const asked: Array<[number, number]> = []
    const history = Object.assign(signal, {
      recent: async (ms: number, endedMsAgo: number) => {
        asked.push([ms, endedMsAgo])
        return Array(100).fill(12)
      },
    })
    const pacer = new LatencyPacer(clock, history, OPTIONS)
    await batch(clock, pacer)
    await batch(clock, pacer)
    assert.equal(pacer.snapshot().baselineP99Ms, 12)
    assert.deepEqual(clock.slept, [], 'no rest')
    assert.deepEqual(
      asked,
      [[OPTIONS.baselineMs, 250]],
      'the window before the run started (not the first batch, 250 ms of work)'
    )

    const busy = new ScriptedSignal()
    const other = new LatencyPacer(
      new RestingClock(busy),
      Object.assign(busy, { recent: async () => null }),
      OPTIONS
    )
    await other.afterBatch()
    assert.isNull(other.snapshot().baselineP99Ms, 'another run was paced: rest instead')
  })

  test('held at the floor window after window: the baseline is measured again at once', async ({
    assert,
  }) => {
    // The baseline from history was a lucky, too-fast window (5 ms); the foreground is at its
    // usual 10 ms whether the run works or rests.
    const signal = new ScriptedSignal()
    signal.ms = 10
    signal.idleMs = 10
    const clock = new RestingClock(signal)
    const history = Object.assign(signal, { recent: async () => Array(100).fill(5) })
    const pacer = new LatencyPacer(clock, history, { ...OPTIONS, rebaselineMs: 3_600_000 })
    await batch(clock, pacer)
    assert.equal(pacer.snapshot().baselineP99Ms, 5)
    let floorAt = -1
    for (let i = 0; i < 200 && clock.slept.length === 0; i++) {
      await batch(clock, pacer)
      if (floorAt < 0 && pacer.duty <= OPTIONS.minDuty) floorAt = clock.t
    }
    assert.isAbove(floorAt, 0, 'the lucky baseline drove the duty to its floor')
    assert.isNotEmpty(clock.slept, 'it rested to measure the baseline again')
    assert.isAtMost(
      clock.t - floorAt,
      (STUCK_WINDOWS + 1) * OPTIONS.windowMs,
      'after STUCK_WINDOWS windows at the floor, not at the next rebaselineMs (1 h)'
    )
    await batch(clock, pacer)
    assert.closeTo(pacer.snapshot().baselineP99Ms!, 11, 0.5, 'the baseline now is the idle p99')
    for (let i = 0; i < 40; i++) await batch(clock, pacer)
    assert.isAbove(pacer.duty, OPTIONS.minDuty, 'and the run speeds up again')
  })

  test('a failing signal or sink never stops the loop', async ({ assert }) => {
    const clock = new FakeClock()
    const pacer = new LatencyPacer(
      clock,
      { read: () => Promise.reject(new Error('down')) },
      OPTIONS,
      () => Promise.reject(new Error('down'))
    )
    for (let i = 0; i < 10; i++) {
      clock.t += 1_000
      await pacer.afterBatch()
    }
    assert.isAbove(pacer.duty, 0.2)
  })

  test('the throttle rests busy × (1/duty − 1), grows the batch with the duty, full speed without foreground', async ({
    assert,
  }) => {
    const signal = new ScriptedSignal()
    const clock = new RestingClock(signal)
    const pacer = new LatencyPacer(clock, signal, OPTIONS)
    let active = true
    const throttle = new Throttle(
      clock,
      { sleepMs: 0, maxRate: 0, niceRatio: 0 },
      { active: async () => active },
      pacer
    )
    clock.markWorking()
    clock.t += 100
    await throttle.afterBatch(100) // the first batch: traffic seen, the duty 0.2's rest
    assert.isTrue(throttle.paced)
    assert.equal(clock.slept.at(-1), 400)
    assert.equal(throttle.batchSize(1000, 100), 280)
    active = false
    clock.t += 100
    await throttle.afterBatch(100)
    assert.isFalse(throttle.paced)
    assert.equal(throttle.batchSize(1000, 100), 1000)
  })
})

test.group('request latency recorder', () => {
  test('writes what it recorded once per flush, nothing when idle, at most maxSamples', async ({
    assert,
  }) => {
    const writes: number[][] = []
    const recorder = new RequestLatencyRecorder(
      { flushMs: 500, maxSamples: 3, keepMs: 60_000 },
      async (_source, samples) => {
        writes.push(samples)
      },
      () => 0.99
    )
    await recorder.flush()
    assert.lengthOf(writes, 0)
    for (const ms of [1, 2, 3, 4, Number.NaN, -1]) recorder.record(ms)
    await recorder.flush()
    assert.deepEqual(writes, [[1, 2, 3]])
    await recorder.flush()
    assert.lengthOf(writes, 1)
  })
})
