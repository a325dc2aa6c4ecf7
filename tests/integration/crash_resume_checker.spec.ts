/*
|--------------------------------------------------------------------------
| Crash-and-resume checker (Jepsen style: many faults, a checker at the end)
|--------------------------------------------------------------------------
|
| Seeds RELIABILITY_ROWS rows (20 000 in CI), records a digest of every
| row's plaintext, then runs `rotate:kek` (and `reencrypt`) as a child
| process and SIGKILLs it RELIABILITY_KILLS times (12 in CI) at
| seeded-random points, resuming each time. Windows are reached by polling
| the run row or by holding a row lock the child must take (never by
| sleeping): during Step A before the KMS answers, after the KMS rotated
| but before the run recorded it, inside a batch commit, right after a
| commit, and at random times from the start. After every kill the run's
| counters equal the rows actually moved; at the end every row is at the
| target, every plaintext digest is unchanged, and the KMS rotated once.
|
| Replay a failure: RELIABILITY_SEED=<seed printed in the failure>.
| The full check: RELIABILITY_ROWS=50000 RELIABILITY_KILLS=20 (or more).
|
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { EntryService } from '#services/entry_service'
import { spawnAce, type AceChild } from '#tests/helpers/ace_child'
import {
  digestDiff,
  envInt,
  holdRowLock,
  plaintextDigests,
  reliabilitySeed,
  seededRandom,
  withSeed,
} from '#tests/helpers/crash_checker'
import {
  createKek,
  kekName,
  latestVersion,
  payloadFor,
  versionCounts,
} from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'

const ROWS = envInt('RELIABILITY_ROWS', 20_000)
const KILLS = envInt('RELIABILITY_KILLS', 12)
const BATCH = 250

type Window = 'progress' | 'mid-commit' | 'early'

async function seedRows(kek: string) {
  const entries = await app.container.make(EntryService)
  await entries.seed(kek, {
    rows: ROWS,
    batchSize: 1000,
    payload: (i) => ({ ...payloadFor(kek, i), pad: 'x'.repeat(i % 64) }),
  })
}

async function lockFree(key: string) {
  const locks = await app.container.make(AdvisoryLock)
  await waitFor(
    async () => {
      const held = await locks.heldKeys([key])
      return !held.has(key)
    },
    { timeoutMs: 30_000, what: 'the run lock to be free' }
  )
}

/**
 * SIGKILL, then the child's database sessions terminated too: Postgres does
 * not notice a dead client while a statement waits on a lock, and would
 * finish it later; a crashed host takes its statements with it.
 */
async function kill(child: AceChild) {
  child.child.kill('SIGKILL')
  await child.exited
  // Only an Ace child's sessions (not this process's DEK-cache listener, rewrap-bg-dek-cache).
  const bg = `datname = current_database() AND application_name IN ('rewrap-bg', 'rewrap-bg-lock')`
  await db.rawQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${bg}`)
  await waitFor(
    async () => {
      const { rows } = await db.rawQuery(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${bg}`
      )
      return rows[0].n === 0
    },
    { timeoutMs: 30_000, what: "the child's sessions to end" }
  )
}

/**
 * Kills `spawn()`'s child at seeded-random windows until `kills` kills
 * landed (or the run finished), resuming each time; checks `afterKill`
 * after every one. Answers the kills and the windows hit.
 */
async function killRepeatedly(options: {
  random: () => number
  kills: number
  spawn: () => AceChild
  done: () => Promise<number>
  runRowTable: string
  runRowId: () => Promise<string>
  lockKey: string
  afterKill: (index: number) => Promise<void>
}) {
  const hit: Record<Window, number> = { 'progress': 0, 'mid-commit': 0, 'early': 0 }
  let landed = 0
  while (landed < options.kills) {
    const killsLeft = options.kills - landed
    const pick = options.random()
    const window: Window = pick < 0.55 ? 'progress' : pick < 0.8 ? 'mid-commit' : 'early'
    const child = options.spawn()
    const before = await options.done()
    let finished = false
    let killed = false
    child.exited.then(() => (finished = true))
    if (window === 'early') {
      // Anywhere from boot to the first batches.
      const deadline = Date.now() + Math.floor(options.random() * 2500)
      await waitFor(async () => finished || Date.now() >= deadline, {
        timeoutMs: 60_000,
        intervalMs: 5,
        what: 'the early kill point',
      })
    } else if (window === 'progress') {
      // Right after a commit: leave at least one batch per kill still to come.
      const remaining = ROWS - before
      const room = Math.max(0, remaining - BATCH * (killsLeft + 1))
      const threshold = before + BATCH + Math.floor((options.random() * room) / killsLeft)
      await waitFor(async () => finished || (await options.done()) >= threshold, {
        timeoutMs: 120_000,
        intervalMs: 5,
        what: `${threshold} rows committed (from ${before})`,
      })
    } else {
      // Inside a batch commit: the run row is locked by the test, the child's
      // statement (rows already updated in it) waits; the kill rolls it back.
      await waitFor(async () => finished || (await options.done()) > before, {
        timeoutMs: 120_000,
        intervalMs: 5,
        what: `a commit after ${before} rows`,
      })
      if (!finished) {
        const holder = await holdRowLock(
          `SELECT 1 FROM ${options.runRowTable} WHERE id = $1 FOR UPDATE`,
          [await options.runRowId()]
        )
        try {
          await Promise.race([holder.blocking(), child.exited])
          if (!finished) {
            killed = true
            await kill(child)
          }
        } finally {
          await holder.release()
        }
      }
    }
    if (finished && !killed) {
      const code = await child.exited
      if (code !== 0) throw new Error(`child exited ${code}: ${child.output().slice(-500)}`)
      break
    }
    if (!killed) await kill(child)
    hit[window]++
    landed++
    await lockFree(options.lockKey)
    await options.afterKill(landed)
  }
  return { landed, hit }
}

test.group('reliability: crash and resume (SIGKILL at random points)', () => {
  test('rotate:kek killed at random points (Step A included) then resumed: every row at the target, plaintexts unchanged, counters exact, the KMS rotated once', async ({
    assert,
  }) => {
    const seed = reliabilitySeed()
    await withSeed(seed, async () => {
      const random = seededRandom(seed)
      const kek = kekName('chaos')
      await createKek(kek)
      await seedRows(kek)
      const before = await plaintextDigests(kek)
      assert.equal(before.size, ROWS)

      const flags = ['--batch-size', String(BATCH), '--nice-ratio', '0', '--json']
      const runRow = () => db.from('key_rotations').where('kek_name', kek).first()

      // Window 1, Step A before the KMS answers: the test holds the keyring's row, the
      // child's rotate waits on it; killed there, the KMS never rotated.
      const keyring = await holdRowLock(`SELECT 1 FROM kms_keys WHERE name = $1 FOR UPDATE`, [kek])
      let child = spawnAce(['rotate:kek', kek, ...flags])
      await keyring.blocking()
      await kill(child)
      await keyring.release()
      await lockFree(lockKeys.rotation(kek))
      assert.equal(await latestVersion(kek), 1, 'killed before the KMS rotated')
      const first = await runRow()
      assert.equal(first.status, 'running')
      assert.isNull(first.target_version)

      // Window 2, Step A after the KMS rotated, before the run recorded the target: the
      // child passes the keyring, then waits on the run row the test holds.
      const keyring2 = await holdRowLock(`SELECT 1 FROM kms_keys WHERE name = $1 FOR UPDATE`, [kek])
      child = spawnAce(['rotate:kek', kek, '--resume', ...flags])
      await keyring2.blocking()
      const runLock = await holdRowLock(`SELECT 1 FROM key_rotations WHERE id = $1 FOR UPDATE`, [
        first.id,
      ])
      await keyring2.release()
      await runLock.blocking()
      assert.equal(await latestVersion(kek), 2, 'the KMS rotated')
      await kill(child)
      await runLock.release()
      await lockFree(lockKeys.rotation(kek))
      const afterStepA = await runRow()
      assert.isNull(afterStepA.target_version, 'killed before the run recorded it')

      // Step B: kill at random windows, resume each time.
      const moved = async () => {
        const counts = await versionCounts(kek)
        return counts[2] ?? 0
      }
      const { landed, hit } = await killRepeatedly({
        random,
        kills: KILLS - 2,
        spawn: () => spawnAce(['rotate:kek', kek, '--resume', ...flags]),
        done: async () => {
          const row = await runRow()
          return Number(row?.rewrapped ?? 0)
        },
        runRowTable: 'key_rotations',
        runRowId: async () => String(first.id),
        lockKey: lockKeys.rotation(kek),
        afterKill: async (index) => {
          const row = await runRow()
          assert.equal(row.status, 'running', `kill ${index}: the run stays resumable`)
          assert.equal(Number(row.rewrapped), await moved(), `kill ${index}: counter = rows moved`)
        },
      })
      assert.isAtLeast(landed + 2, KILLS, `kills landed: ${JSON.stringify(hit)}`)

      const last = spawnAce(['rotate:kek', kek, '--resume', ...flags])
      assert.equal(await last.exited, 0, last.output().slice(-500))
      const final = await runRow()
      assert.equal(final.status, 'completed')
      assert.equal(final.target_version, 2)
      assert.equal(Number(final.rewrapped), ROWS, 'every row counted once')
      assert.equal(Number(final.skipped) + Number(final.failed), 0)
      assert.deepEqual(await versionCounts(kek), { 2: ROWS })
      assert.equal(await latestVersion(kek), 2, 'the KMS rotated exactly once')
      assert.lengthOf(await db.from('key_rotations').where('kek_name', kek), 1, 'one run')
      assert.deepEqual(digestDiff(before, await plaintextDigests(kek)), [], 'plaintexts')
    })
  }).timeout(600_000)

  test('reencrypt killed at random points then resumed: every row under the new KEK, plaintexts unchanged, counters exact', async ({
    assert,
  }) => {
    const seed = reliabilitySeed() + 1
    await withSeed(seed, async () => {
      const random = seededRandom(seed)
      const from = kekName('chaos-from')
      const to = kekName('chaos-to')
      await createKek(from)
      await createKek(to)
      await seedRows(from)
      const before = await plaintextDigests(from)

      const args = ['reencrypt', '--from', from, '--to', to, '--batch-size', String(BATCH)]
      const flags = [...args, '--nice-ratio', '0', '--json']
      const runRow = () => db.from('reencrypt_runs').where('from_kek', from).first()
      const moved = async () => {
        const { rows } = await db.rawQuery(
          `SELECT count(*)::int AS n FROM vault_entries WHERE kek_name = ?`,
          [to]
        )
        return rows[0].n as number
      }
      const { landed, hit } = await killRepeatedly({
        random,
        kills: KILLS,
        spawn: () => spawnAce(flags),
        done: async () => {
          const row = await runRow()
          return Number(row?.reencrypted ?? 0)
        },
        runRowTable: 'reencrypt_runs',
        runRowId: async () => {
          const row = await waitFor(runRow, { timeoutMs: 60_000, what: 'the run row' })
          return String(row.id)
        },
        lockKey: lockKeys.reencrypt(from),
        afterKill: async (index) => {
          const row = await runRow()
          if (!row) return // killed before the run row existed
          assert.equal(row.status, 'running', `kill ${index}: the run stays resumable`)
          assert.equal(
            Number(row.reencrypted),
            await moved(),
            `kill ${index}: counter = rows moved`
          )
        },
      })
      assert.isAtLeast(landed, KILLS, `kills landed: ${JSON.stringify(hit)}`)

      const last = spawnAce(flags)
      assert.equal(await last.exited, 0, last.output().slice(-500))
      const final = await runRow()
      assert.equal(final.status, 'completed')
      assert.equal(Number(final.reencrypted), ROWS, 'every row counted once')
      assert.equal(Number(final.skipped) + Number(final.failed), 0)
      assert.equal(await moved(), ROWS)
      assert.lengthOf(await db.from('reencrypt_runs').where('from_kek', from), 1, 'one run')
      assert.equal(await latestVersion(to), 1, 'no KEK rotated')
      assert.equal(await latestVersion(from), 1)
      assert.deepEqual(digestDiff(before, await plaintextDigests(to)), [], 'plaintexts')
    })
  }).timeout(600_000)
})
