import { test } from '@japa/runner'
import { FakeClock } from '#tests/helpers/clock'
import { MemoryPacingRows } from '#tests/helpers/memory_pacing_rows'
import { DEFAULT_LATENCY_BUDGET } from '#services/latency_budget'
import type { LatencyPacerOptions, LatencySignal } from '#services/latency_pacer'
import { JUDGE_LEASE_POLLS, RunDuties, RunDuty } from '#services/run_duty'
import { Throttle } from '#services/throttle'

const OPTIONS: LatencyPacerOptions = {
  ...DEFAULT_LATENCY_BUDGET,
  windowMs: 2_000,
  minSamples: 20,
  pollMs: 500,
  baselineMs: 2_000,
  rebaselineMs: 60_000,
}
const LEASE_MS = JUDGE_LEASE_POLLS * OPTIONS.pollMs

/** A foreground with traffic at `ms` (60 requests per read), or none. */
class Foreground implements LatencySignal {
  constructor(
    public ms: number | null = null,
    public perRead = 60
  ) {}
  async read() {
    const ms = this.ms
    return ms === null ? [] : Array.from({ length: this.perRead }, (_, i) => ms + (i % 5) / 10)
  }
}

function worker(clock: FakeClock, rows: MemoryPacingRows, id: string, signal = new Foreground()) {
  return new RunDuty(clock, { judgeId: id, rows, pacer: OPTIONS, signal: () => signal })
}

/** A throttle as a chunk's engine builds it: other sessions busy, paced by `duty`. */
function throttleOf(clock: FakeClock, duty: RunDuty) {
  return new Throttle(
    clock,
    { sleepMs: 0, maxRate: 0, niceRatio: 0 },
    { active: async () => true },
    duty
  )
}

/** One batch of `busyMs` then the throttle's rest; returns what was slept. */
async function batch(clock: FakeClock, throttle: Throttle, busyMs = 100): Promise<number> {
  const before = clock.slept.length
  clock.t += busyMs
  await throttle.afterBatch(100)
  return clock.slept.slice(before).reduce((a, b) => a + b, 0)
}

test.group('run-wide duty (judge lease on run_pacing, fake clock)', () => {
  test('a worker follows the duty in the row: rests busy × (1/duty − 1), reads the row at most every pollMs', async ({
    assert,
  }) => {
    const clock = new FakeClock()
    const rows = new MemoryPacingRows(clock).judgedBy('judge-elsewhere', 0.1)
    const duty = worker(clock, rows, 'w1')
    const throttle = throttleOf(clock, duty)
    assert.equal(await batch(clock, throttle), 900, '100 ms of work at duty 0.1')
    assert.isFalse(duty.judging, 'a live judge holds the lease')
    assert.deepEqual(clock.slept, [500, 400], 'rested in poll-interval steps')
    assert.equal(throttle.batchSize(1000, 100), 190, 'the batch grows with the run’s duty')

    rows.row!.duty = 0.5 // the judge wrote a new judgement
    assert.equal(await batch(clock, throttle), 100, 'read at the next poll')
    const reads = rows.reads
    for (let i = 0; i < 50; i++) await batch(clock, throttle, 10) // 50 × 20 ms = 1 s
    assert.isAtMost(rows.reads - reads, 1_000 / OPTIONS.pollMs + 1, 'one read per pollMs')
    assert.equal(rows.row!.judgeId, 'judge-elsewhere')
  })

  test('the first worker takes the lease and judges; a judge that stops is replaced within its lease + one poll, from its duty', async ({
    assert,
  }) => {
    const clock = new FakeClock()
    const rows = new MemoryPacingRows(clock)
    const a = worker(clock, rows, 'A')
    const b = worker(clock, rows, 'B')
    // Two workers side by side on one clock: a batch of 100 ms, then a rest of 100 ms.
    const step = async (w: RunDuty) => {
      clock.t += 100
      await w.afterBatch()
      await w.rest(100)
    }
    await step(a)
    await step(b)
    assert.isTrue(a.judging)
    assert.isFalse(b.judging)
    // No foreground traffic: A speeds the run up window after window; B follows.
    for (let i = 0; i < 20; i++) {
      await step(a)
      await step(b)
    }
    assert.isAbove(rows.row!.duty, OPTIONS.initialDuty)
    assert.isFalse(b.judging, 'never while A’s lease is live')
    clock.t += OPTIONS.pollMs
    await step(b)
    assert.equal(b.duty, rows.row!.duty, 'B reads A’s last judgement at its next poll')

    // A stops (SIGKILL, or hangs): only B works.
    const lastRenewal = rows.row!.judgeUntil! - LEASE_MS
    const dutyAtDeath = rows.row!.duty
    for (let i = 0; i < 1_000 && !b.judging; i++) await step(b)
    assert.isTrue(b.judging, 'B took the lease')
    assert.equal(rows.row!.judgeId, 'B')
    const took = clock.t
    assert.isAtLeast(took - lastRenewal, LEASE_MS, 'not before the lease ran out')
    // B looks every pollMs (between the sleeps of its rests too) and after each batch.
    assert.isAtMost(took - lastRenewal, LEASE_MS + OPTIONS.pollMs + 100)
    assert.closeTo(b.duty, dutyAtDeath, 0.1 + 1e-9, 'went on from the row’s duty')

    // A comes back: its lease is gone; it steps down and follows B's duty.
    await step(a)
    assert.isFalse(a.judging)
    assert.equal(a.duty, rows.row!.duty)
    assert.equal(rows.row!.judgeId, 'B')
  })

  test('resting_until pauses every worker until it is past, in bounded steps', async ({
    assert,
  }) => {
    const clock = new FakeClock()
    const rows = new MemoryPacingRows(clock).judgedBy('judge-elsewhere', 1)
    const duty = worker(clock, rows, 'w1')
    const throttle = throttleOf(clock, duty)
    assert.equal(await batch(clock, throttle), 0, 'duty 1: no rest')
    await rows.announceRest('judge-elsewhere', LEASE_MS, 3_000)
    const announcedAt = clock.t
    clock.t += OPTIONS.pollMs // the batch in flight when it was announced
    const rested = await batch(clock, throttle, 0)
    assert.equal(clock.t - announcedAt, 3_000, 'worked again exactly when the rest ended')
    assert.equal(rested, 3_000 - OPTIONS.pollMs)
    assert.isTrue(clock.slept.every((ms) => ms <= OPTIONS.pollMs))
    assert.equal(await batch(clock, throttle), 0, 'the same rest is not waited twice')

    // A row asking for more than any baseline rest (a hand edit): never longer than one.
    await rows.announceRest('judge-elsewhere', LEASE_MS, 3_600_000)
    clock.t += OPTIONS.pollMs
    assert.equal(
      await batch(clock, throttle, 0),
      OPTIONS.baselineMs + 4 * OPTIONS.pollMs,
      'bounded'
    )
  })

  test('the judge announces its baseline rest to every worker: the whole rest, settle included, lease renewed through it', async ({
    assert,
  }) => {
    const clock = new FakeClock()
    const rows = new MemoryPacingRows(clock)
    const judge = worker(clock, rows, 'J', new Foreground(10))
    const throttle = throttleOf(clock, judge)
    await batch(clock, throttle) // takes the lease; traffic seen, no baseline yet
    assert.isTrue(judge.judging)
    assert.lengthOf(rows.announced, 0)
    const before = clock.t
    await batch(clock, throttle, 0) // measures the baseline
    assert.lengthOf(rows.announced, 1)
    const [rest] = rows.announced
    // 500 ms (own batch's rows) + 500 ms (the others' batches in flight) + 2,000 ms measured.
    assert.equal(rest.ms, 3_000)
    assert.equal(rest.at, before)
    assert.isAtLeast(clock.t, rest.at + rest.ms, 'the judge itself rested all of it')
    assert.closeTo(judge.snapshot()!.baselineP99Ms!, 10.4, 0.01)
    assert.isAtLeast(rows.row!.judgeUntil!, rest.at + rest.ms, 'lease renewed during the rest')
  })

  test('the chunks of one process share one duty; a stopping worker gives the lease up at once', async ({
    assert,
  }) => {
    const clock = new FakeClock()
    const rows = new MemoryPacingRows(clock)
    const make = () => ({ rows, signal: () => new Foreground() })
    const here = new RunDuties('here', make)
    const there = new RunDuties('there', make)
    const first = here.acquire(clock, 'rotation', '7', OPTIONS)
    const second = here.acquire(clock, 'rotation', '7', OPTIONS)
    assert.strictEqual(first, second)
    await first.rest(0)
    assert.isTrue(first.judging)
    const other = there.acquire(clock, 'rotation', '7', OPTIONS)
    await other.rest(0)
    assert.isFalse(other.judging)

    await here.release(first, true)
    assert.isTrue(first.judging, 'one chunk of the run still works here')
    await here.release(second, true)
    assert.isFalse(first.judging)
    clock.t += OPTIONS.pollMs
    await other.rest(0)
    assert.isTrue(other.judging, 'taken over at the next poll, not after the lease')
    // Run 7 has no chunk here any more: taking up another run forgets it, so a later chunk of
    // run 7 starts from the row again, not from this process's stale state.
    here.acquire(clock, 'rotation', '8', OPTIONS)
    assert.notStrictEqual(here.acquire(clock, 'rotation', '7', OPTIONS), first, 'run 7 forgotten')
  })
})
