/*
| A distributed run paced by its one run-wide duty (app/services/run_duty.ts)
| on real Postgres: the chunks of a real distributed rotation are worked by
| this process (the body of `rewrap:worker`'s job), following the run's
| `run_pacing` row as another worker — the judge — left it. Time is virtual:
| the clock moves only by the workers' sleeps and by 100 ms per KMS rewrap
| call (the batch's "work"), so every rest has one right answer.
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { RewrapConfig } from '#config/rewrap'
import { KmsManager } from '#kms/kms_manager'
import type { KmsDriver } from '#kms/contract'
import { Clock } from '#services/clock'
import { DistributedRuns, runDuties } from '#services/distributed_runs'
import { KeyRotationService } from '#services/key_rotation_service'
import { MetricsService } from '#services/metrics_service'
import { DatabasePacingRows } from '#services/run_pacing_rows'
import { RunPacingStore } from '#services/run_pacing'
import { FakeClock } from '#tests/helpers/clock'
import { otherSession } from '#tests/helpers/pg_sessions'
import { createKek, kekName, seed, versionCounts } from '#tests/helpers/rotation'

/** Virtual ms one KMS rewrap call (one batch) takes. */
const WORK_MS = 100
const POLL_MS = 1_000

/** One KMS rewrap call (one batch): when (the clock's ms) and how many rows. */
interface Call {
  at: number
  size: number
}

/** A KMS whose rewrap calls take WORK_MS of the clock's time; records every call. */
async function timedKms(clock: FakeClock, calls: Call[]) {
  const real = await app.container.make(KmsManager)
  const timed = (driver: KmsDriver) =>
    bound(driver, 'rewrap', (...args: Parameters<KmsDriver['rewrap']>) => {
      calls.push({ at: clock.t, size: args[1].length })
      clock.t += WORK_MS
      return driver.rewrap(...args)
    })
  const kms = bound(real, 'forKek', async (kek: string) => timed(await real.forKek(kek)))
  app.container.swap(KmsManager, () => kms)
}

/** `target` with its member `name` replaced (every other method bound to `target`). */
function bound<T extends object>(target: T, name: keyof T, replacement: unknown): T {
  return new Proxy(target, {
    get(t, prop) {
      if (prop === name) return replacement
      const value = Reflect.get(t, prop, t)
      return typeof value === 'function' ? value.bind(t) : value
    },
  })
}

/** A distributed rotation of `rows` rows cut into chunks of about `chunkRows`, not worked yet. */
async function distributedRun(rows: number, chunkRows: number) {
  const kek = kekName('dist-duty')
  await createKek(kek)
  await seed(kek, rows)
  const rotations = await app.container.make(KeyRotationService)
  const run = await rotations.rotate(kek, { distributed: true, chunkRows, batchSize: 200 })
  const chunks = await db
    .from('rewrap_chunks')
    .where({ run_kind: 'rotation', run_id: run.id })
    .orderBy('chunk_no')
    .select('id')
  return { kek, run, chunkIds: chunks.map((c) => String(c.id)) }
}

/** The run's row as another worker (the judge) wrote it; `restSeconds` > 0: resting. */
async function judgedElsewhere(runId: string, duty: number, leaseSeconds = 3600, restSeconds = 0) {
  await db.rawQuery(
    `INSERT INTO run_pacing (run_kind, run_id, mode, duty, judged_at, judge_id, judge_until,
                             resting_until)
     VALUES ('rotation', ?, 'latency-budget', ?, now(), 'judge-elsewhere',
             now() + make_interval(secs => ?),
             CASE WHEN ? > 0 THEN now() + make_interval(secs => ?) END)
     ON CONFLICT (run_kind, run_id) DO UPDATE SET duty = excluded.duty`,
    [runId, duty, leaseSeconds, restSeconds, restSeconds]
  )
}

async function pacingRow(runId: string) {
  return db.from('run_pacing').where({ run_kind: 'rotation', run_id: runId }).firstOrFail()
}

test.group('distributed run paced by one run-wide duty (real Postgres)', (group) => {
  let clock: FakeClock
  let calls: Call[]
  group.each.setup(async () => {
    const rotation = app.config.get<RewrapConfig>('rewrap').rotation
    const saved = { ...rotation.latencyBudget }
    Object.assign(rotation.latencyBudget, { pollMs: POLL_MS })
    clock = new FakeClock()
    clock.t = Date.now()
    calls = []
    app.container.swap(Clock, () => clock)
    // Other sessions use the database: the run is paced.
    const other = await otherSession()
    const busy = setInterval(() => other.query('SELECT 1').catch(() => {}), 20)
    return async () => {
      clearInterval(busy)
      await other.end()
      Object.assign(rotation.latencyBudget, saved)
      app.container.restore(Clock)
      app.container.restore(KmsManager)
    }
  })

  /**
   * Works one chunk as a worker's job does. Returns its sleeps, its batch
   * sizes and the rest after each batch but the last (the time between two
   * KMS calls less the work).
   */
  async function work(runId: string, chunkId: string) {
    const slept = clock.slept.length
    const before = calls.length
    const runs = await app.container.make(DistributedRuns)
    await runs.runChunk({ kind: 'rotation', runId, chunkId })
    const mine = calls.slice(before)
    return {
      slept: clock.slept.slice(slept),
      sizes: mine.map((c) => c.size),
      rests: mine.slice(1).map((c, i) => c.at - mine[i].at - WORK_MS),
    }
  }

  test('the workers rest by the duty in the row, whoever wrote it, and follow a new one', async ({
    assert,
  }) => {
    const { kek, run, chunkIds } = await distributedRun(2000, 1000)
    assert.lengthOf(chunkIds, 2)
    await timedKms(clock, calls)
    await judgedElsewhere(run.id, 0.1)

    const first = await work(run.id, chunkIds[0])
    // Batches 1 and 2 overlap (not paced yet: the next batch's KMS call while the first
    // commits); from then on one at a time: 100 ms of work, 900 ms of rest (duty 0.1), in
    // batches of 100 + (200 − 100) × 0.1 rows.
    assert.isAtLeast(first.rests.length, 5)
    assert.deepEqual(first.rests.slice(2), Array(first.rests.length - 2).fill(900))
    assert.deepEqual(first.sizes.slice(2, -1), Array(first.sizes.length - 3).fill(110))
    assert.isTrue(
      first.slept.every((ms) => ms <= POLL_MS),
      'rests in poll-interval steps'
    )

    await judgedElsewhere(run.id, 0.5) // the judge speeds the run up
    const second = await work(run.id, chunkIds[1])
    // Read at the first poll after the previous one (1 s, one batch at most).
    assert.isAtLeast(second.rests.length, 4)
    assert.deepEqual(second.rests.slice(2), Array(second.rests.length - 2).fill(100))
    assert.deepEqual(second.sizes.slice(2, -1), Array(second.sizes.length - 3).fill(150))

    const row = await pacingRow(run.id)
    assert.equal(row.judge_id, 'judge-elsewhere', 'a live judge is never replaced')
    const rotations = await app.container.make(KeyRotationService)
    const ended = await rotations.find(run.id)
    assert.equal(ended.status, 'completed')
    assert.deepEqual(await versionCounts(kek), { 2: 2000 })
  }).timeout(60_000)

  test('while resting_until is ahead (the judge measures the baseline) no worker works', async ({
    assert,
  }) => {
    const { kek, run, chunkIds } = await distributedRun(300, 1000)
    assert.lengthOf(chunkIds, 1)
    await timedKms(clock, calls)
    const startedAt = clock.t
    await judgedElsewhere(run.id, 1, 3600, 20)

    const { slept } = await work(run.id, chunkIds[0])
    const firstBatch = calls[0].at - startedAt
    assert.isAtLeast(firstBatch, 19_000, 'the first batch waited for the rest to end')
    assert.isAtMost(firstBatch, 20_000)
    assert.isTrue(
      slept.every((ms) => ms <= POLL_MS),
      'in poll-interval steps'
    )
    assert.equal(
      slept.reduce((a, b) => a + b, 0),
      firstBatch,
      'duty 1: no rest after it'
    )
    assert.deepEqual(await versionCounts(kek), { 2: 300 })
  }).timeout(60_000)

  test('a judge whose lease ran out is replaced by the next worker (the database’s clock); the run’s row is in /metrics', async ({
    assert,
  }) => {
    const { kek, run, chunkIds } = await distributedRun(2000, 1000)
    await timedKms(clock, calls)
    await judgedElsewhere(run.id, 0.3, -1)

    await work(run.id, chunkIds[0])
    const row = await pacingRow(run.id)
    assert.equal(row.judge_id, runDuties.judgeId, 'this worker judges now')
    assert.isAbove(new Date(row.judge_until).getTime(), Date.now() - 1_000)
    const views = await new RunPacingStore().forRuns('rotation', [
      { id: run.id, status: 'running' },
    ])
    assert.isDefined(views.get(run.id), 'the distributed run shows its pacing while it runs')
    const metricsService = await app.container.make(MetricsService)
    const metrics = await metricsService.render()
    assert.match(metrics, new RegExp(`rewrap_pacing_duty\\{kek="${kek}"\\} [0-9.]+`))

    await work(run.id, chunkIds[1])
    assert.deepEqual(await versionCounts(kek), { 2: 2000 })
  }).timeout(60_000)

  test('the row’s lease: one claim of two wins, only the judge writes, its rest and its release reach everyone', async ({
    assert,
  }) => {
    const runId = String(900_000_000 + Math.floor(Math.random() * 1_000_000))
    const rows = new DatabasePacingRows('rotation', runId)
    assert.isNull(await rows.read())
    const [a, b] = await Promise.all([rows.claim('A', 60_000, 0.2), rows.claim('B', 60_000, 0.2)])
    assert.isTrue((a === null) !== (b === null), 'exactly one claim takes the lease')
    const [judge, other] = a ? ['A', 'B'] : ['B', 'A']
    assert.isNull(await rows.claim(other, 60_000, 0.2), 'not while the lease is live')
    assert.isFalse(await rows.renew(other, 60_000))
    const snapshot = {
      duty: 0.35,
      p99Ms: 12,
      baselineP99Ms: 10,
      baselineAgeMs: 5_000,
      judgement: 'hold' as const,
    }
    assert.isFalse(await rows.judge(other, 60_000, snapshot))
    assert.isTrue(await rows.judge(judge, 60_000, snapshot))
    assert.isTrue(await rows.announceRest(judge, 60_000, 20_000))
    let row = (await rows.read())!
    assert.equal(row.judgeId, judge)
    assert.equal(row.duty, 0.35)
    assert.equal(row.baselineP99Ms, 10)
    assert.closeTo(row.baselineAgeMs!, 5_000, 2_000)
    assert.closeTo(row.restLeftMs, 20_000, 2_000)
    assert.closeTo(row.judgeLeftMs!, 60_000, 2_000)
    assert.isNotNull(row.restingUntil)

    await rows.release(judge)
    row = (await rows.read())!
    assert.equal(row.restLeftMs, 0, 'a released judge’s rest ends')
    assert.isAtMost(row.judgeLeftMs!, 0)
    assert.isNotNull(await rows.claim(other, 60_000, 0.2), 'the next worker takes it at once')
    assert.equal((await rows.read())!.duty, 0.35, 'and goes on from the duty')
  })
})
