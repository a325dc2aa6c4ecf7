import { readFileSync } from 'node:fs'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { BACKGROUND_TAG, countForegroundSessions } from '#services/foreground_detector'
import { KeyRotationService } from '#services/key_rotation_service'
import { createKek, kekName, seed, versionCounts } from '#tests/helpers/rotation'
import { otherSession } from '#tests/helpers/pg_sessions'
import { waitFor } from '#tests/helpers/wait'

/** Runs `work` while another session runs a statement every 50 ms (foreground load). */
async function whileBusy<T>(work: () => Promise<T>): Promise<T> {
  const other = await otherSession()
  const busy = setInterval(() => other.query('SELECT 1').catch(() => {}), 50)
  try {
    return await work()
  } finally {
    clearInterval(busy)
    await other.end()
  }
}

test.group('foreground detector (pg_stat_activity)', () => {
  test('counts another session that just ran a statement, not one whose last statement was background work', async ({
    assert,
  }) => {
    const other = await otherSession()
    try {
      await other.query(`${BACKGROUND_TAG} SELECT 1`)
      const background = await countForegroundSessions(60_000)
      await other.query('SELECT 1')
      const foreground = await countForegroundSessions(60_000)
      assert.equal(foreground, background + 1)
      await other.query(`${BACKGROUND_TAG} SELECT 1`)
      assert.equal(await countForegroundSessions(60_000), background)
    } finally {
      await other.end()
    }
  })

  test('sessions of background processes (application_name rewrap-bg…) do not count', async ({
    assert,
  }) => {
    const ace = await otherSession('rewrap-bg')
    const other = await otherSession()
    try {
      await other.query(`${BACKGROUND_TAG} SELECT 1`)
      const before = await countForegroundSessions(60_000)
      await ace.query('SELECT 1')
      assert.equal(await countForegroundSessions(60_000), before)
    } finally {
      await ace.end()
      await other.end()
    }
  })

  test('a session idle for longer than the window does not count', async ({ assert }) => {
    const other = await otherSession()
    try {
      const {
        rows: [{ pid }],
      } = await other.query('SELECT pg_backend_pid() AS pid')
      await other.query('SELECT 1')
      // Until the server itself says the session has been idle for 400 ms.
      await waitFor(
        async () => {
          const { rows } = await db.rawQuery(
            `SELECT state = 'idle' AND state_change < clock_timestamp() - interval '400 milliseconds' AS idle
               FROM pg_stat_activity WHERE pid = ?`,
            [pid]
          )
          return rows[0]?.idle === true
        },
        { what: 'the other session to be idle for 400 ms' }
      )
      const withinMinute = await countForegroundSessions(60_000)
      const within100ms = await countForegroundSessions(100)
      assert.isAtLeast(withinMinute, 1)
      assert.isBelow(within100ms, withinMinute, 'idle for 400 ms: outside a 100 ms window')
    } finally {
      await other.end()
    }
  })
})

test.group('rewrap pacing (real rotation, real pg_stat_activity)', () => {
  /** Log lines of one run (LOG_FILE is written synchronously, see bin/test.ts). */
  function runLog(runId: string) {
    return readFileSync(process.env.LOG_FILE!, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((entry) => String(entry.run) === runId)
  }

  test('with another session busy the loop paces itself; --nice-ratio 0 never does', async ({
    assert,
  }) => {
    const kek = kekName('pace')
    await createKek(kek)
    await seed(kek, 400)
    await whileBusy(async () => {
      const rotations = await app.container.make(KeyRotationService)
      const paced = await rotations.rotate(kek, { batchSize: 50, niceRatio: 1 })
      assert.equal(paced.status, 'completed')
      assert.isTrue(
        runLog(paced.id).some((e) => e.paced === true && /rewrap paced/.test(e.msg)),
        'logged the switch to paced'
      )
      const full = await rotations.rotate(kek, { batchSize: 50, niceRatio: 0 })
      assert.equal(full.status, 'completed')
      assert.isFalse(runLog(full.id).some((e) => e.paced === true))
      assert.deepEqual(await versionCounts(kek), { 3: 400 })
    })
  }).timeout(60_000)

  test('while paced, batches shrink to pacedBatchSize (100) and run one at a time', async ({
    assert,
  }) => {
    const kek = kekName('pace-size')
    await createKek(kek)
    await seed(kek, 2600)
    await whileBusy(async () => {
      const rotations = await app.container.make(KeyRotationService)
      const done: number[] = []
      const run = await rotations.rotate(kek, {
        batchSize: 1000,
        niceRatio: 1,
        onProgress: (p) => {
          done.push(p.done)
        },
      })
      assert.equal(run.status, 'completed')
      assert.equal(run.rewrapped, 2600)
      // Full speed until the first sample: batch 1 and, overlapped with its UPDATE, batch 2.
      // Then paced: 100 rows at most, each read after the sleep.
      const sizes = done.map((d, i) => d - (done[i - 1] ?? 0))
      assert.deepEqual(sizes, [1000, 1000, 100, 100, 100, 100, 100, 100])
    })
  }).timeout(60_000)
})
