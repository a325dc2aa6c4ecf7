/*
| The latency budget wired into a real rotation: real Postgres, the local
| KMS, the real signal path (rows of `foreground_latencies`, as the HTTP
| servers write them, read by the loop) and the real foreground detector
| (another session busy). The test plays the HTTP server: it writes the
| foreground's latencies itself — idle values while the loop rests (the
| clock's sleeps, which move virtual time instead of waiting) and, after
| each batch, values the test chooses: within the budget first, then over
| it. No timing is measured on this machine.
*/
import { readFileSync } from 'node:fs'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { RewrapConfig } from '#config/rewrap'
import { Clock } from '#services/clock'
import { KeyRotationService } from '#services/key_rotation_service'
import { createKek, kekName, seed, versionCounts } from '#tests/helpers/rotation'
import { otherSession } from '#tests/helpers/pg_sessions'

/** Writes one "HTTP server flush" of `n` request latencies of about `ms`. */
async function serverFlush(ms: number, n = 30) {
  const samples = Array.from({ length: n }, (_, i) => (ms * (1 + (i % 5) / 100)).toFixed(2))
  await db.rawQuery(
    `INSERT INTO foreground_latencies (source, samples) VALUES ('test-server', ?::real[])`,
    [`{${samples.join(',')}}`]
  )
}

/** Sleeps move virtual time; the foreground is idle while the loop rests. */
class RestingClock extends Clock {
  offsetMs = 0
  idleMs = 10
  now() {
    return new Date(Date.now() + this.offsetMs)
  }
  async sleep(ms: number) {
    this.offsetMs += ms
    await serverFlush(this.idleMs)
  }
}

/** Log lines of one run (LOG_FILE is written synchronously, see bin/test.ts). */
function runLog(runId: string) {
  return readFileSync(process.env.LOG_FILE!, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((entry) => String(entry.run) === runId)
}

test.group('rewrap pacing by the latency budget (real rotation)', (group) => {
  let saved: RewrapConfig['rotation']['latencyBudget']
  group.each.setup(() => {
    const rotation = app.config.get<RewrapConfig>('rewrap').rotation
    saved = { ...rotation.latencyBudget }
    // Short windows in virtual time, so a few thousand rows see several judgements.
    Object.assign(rotation.latencyBudget, {
      windowMs: 150,
      pollMs: 25,
      baselineMs: 100,
      rebaselineMs: 3_600_000,
    })
    const clock = new RestingClock()
    app.container.swap(Clock, () => clock)
    return () => {
      Object.assign(rotation.latencyBudget, saved)
      app.container.restore(Clock)
    }
  })

  test('speeds up (duty and batch size) while the foreground stays within budget, backs off at once when over', async ({
    assert,
  }) => {
    const kek = kekName('budget')
    await createKek(kek)
    await seed(kek, 16_000)
    const other = await otherSession()
    const busy = setInterval(() => other.query('SELECT 1').catch(() => {}), 20)
    try {
      const rotations = await app.container.make(KeyRotationService)
      // up: within budget until the duty reaches 0.5; over: 4× the idle latency until the duty is
      // at its floor; after: idle again. The over phase ends at the floor on purpose: held there,
      // the pacer measures its baseline again (by design), and a new baseline may move the budget.
      type Phase = 'up' | 'over' | 'after'
      let phase = 'up' as Phase
      let peak = 0
      const trace: Array<{ phase: Phase; duty: number | null; batch: number }> = []
      let done = 0
      let runId = ''
      const run = await rotations.rotate(kek, {
        batchSize: 1000,
        onProgress: async (p) => {
          runId = p.run.id
          // The foreground's latency while the loop worked this batch: 10 ms (= idle) or 40 ms.
          await serverFlush(phase === 'over' ? 40 : 10)
          const { rows } = await db.rawQuery(
            `SELECT duty FROM run_pacing WHERE run_kind = 'rotation' AND run_id = ?`,
            [runId]
          )
          const duty = rows[0] ? Number(rows[0].duty) : null
          trace.push({ phase, duty, batch: p.done - done })
          done = p.done
          if (duty !== null) peak = Math.max(peak, duty)
          if (phase === 'up' && duty !== null && duty >= 0.5) phase = 'over'
          else if (phase === 'over' && duty !== null && duty <= 0.05 + 1e-9) phase = 'after'
        },
      })
      assert.equal(run.status, 'completed')
      assert.equal(run.rewrapped, 16_000)
      assert.deepEqual(await versionCounts(kek), { 2: 16_000 })
      const { rows: kept } = await db.rawQuery(
        `SELECT budget_ratio FROM run_pacing WHERE run_kind = 'rotation' AND run_id = ?`,
        [runId]
      )
      assert.equal(kept[0].budget_ratio, run.options.latencyBudget, 'the ratio the pacer used')

      const within = trace.filter((t) => t.phase === 'up' && t.duty !== null)
      const duties = within.map((t) => t.duty!)
      assert.isTrue(
        duties.every((d, i) => i === 0 || d >= duties[i - 1]),
        `the duty never fell within budget: ${duties.join(', ')}`
      )
      assert.isAtLeast(peak, 0.5, 'sped up from the nice ratio 4 (duty 0.2)')
      const pacedBatches = trace.filter((t) => t.duty !== null && t.batch < 1000)
      assert.isAbove(
        Math.max(...pacedBatches.map((t) => t.batch)),
        300,
        'longer batches as the duty grew (paced batches start at 100 + 900 × 0.2)'
      )

      const overDuties = trace
        .filter((t) => t.phase === 'over' && t.duty !== null)
        .map((t) => t.duty!)
      const log = runLog(runId)
      // What the pacer saw, for a failure's message: its baselines and switches.
      const story = log
        .filter((e) => /rewrap pacing/.test(e.msg))
        .map(
          (e) =>
            `${e.msg} (duty ${e.duty}, p99 ${e.p99Ms}, baseline ${e.baselineP99Ms}, n ${e.samples})`
        )
        .join('; ')
      assert.isAtMost(Math.min(...overDuties), peak / 2 + 1e-9, `backed off over budget: ${story}`)
      assert.isTrue(
        overDuties.every((d, i) => i === 0 || d <= overDuties[i - 1]),
        `never sped up over budget: ${overDuties.join(', ')}; ${story}`
      )
      assert.isTrue(log.some((e) => /idle baseline/.test(e.msg)))
      assert.isTrue(log.some((e) => /over its latency budget; backing off/.test(e.msg)))
      // Switches only: far fewer log lines than judgements.
      assert.isAtMost(log.filter((e) => /rewrap pacing: foreground/.test(e.msg)).length, 4)
    } finally {
      clearInterval(busy)
      await other.end()
    }
  }).timeout(120_000)

  test('an explicit --nice-ratio keeps the fixed duty (no latency judgement)', async ({
    assert,
  }) => {
    const kek = kekName('budget-fixed')
    await createKek(kek)
    await seed(kek, 600)
    const other = await otherSession()
    const busy = setInterval(() => other.query('SELECT 1').catch(() => {}), 20)
    try {
      const rotations = await app.container.make(KeyRotationService)
      const sizes: number[] = []
      let done = 0
      const run = await rotations.rotate(kek, {
        batchSize: 1000,
        niceRatio: 4,
        onProgress: (p) => {
          sizes.push(p.done - done)
          done = p.done
        },
      })
      assert.equal(run.status, 'completed')
      assert.equal(run.options.pacing, 'nice-ratio')
      const { rows } = await db.rawQuery(
        `SELECT count(*)::int AS n FROM run_pacing WHERE run_kind = 'rotation' AND run_id = ?`,
        [run.id]
      )
      assert.equal(rows[0].n, 0)
      assert.isTrue(
        sizes.slice(2).every((s) => s <= 100),
        `paced batches of 100: ${sizes}`
      )
    } finally {
      clearInterval(busy)
      await other.end()
    }
  }).timeout(60_000)
})
