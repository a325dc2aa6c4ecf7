import { readdirSync, readFileSync } from 'node:fs'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { EntryService } from '#services/entry_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { ReencryptService } from '#services/reencrypt_service'
import { ChunkStore } from '#services/chunk_store'
import { spawnAce, type AceChild } from '#tests/helpers/ace_child'
import { envInt, plaintextDigests } from '#tests/helpers/crash_checker'
import { createKek, kekName, seed, versionCounts } from '#tests/helpers/rotation'
import { holdRows } from '#tests/helpers/pg_sessions'
import { waitFor } from '#tests/helpers/wait'

/** How soon a SIGKILLed worker's job must be back on the queue (stalled threshold 3 s). */
const TAKE_OVER_BOUND_MS = 20_000

/** `rewrap:worker` children with a short chunk lease (the take-over bound of the test). */
function startWorkers(count: number, cleanup: (fn: () => void) => void): AceChild[] {
  const workers = Array.from({ length: count }, () =>
    spawnAce(['rewrap:worker'], { REWRAP_WORKER_LEASE_MS: '3000' })
  )
  cleanup(() => workers.forEach((w) => w.killIfRunning()))
  return workers
}

/** A distributed run of either kind, as the shared test below drives it. */
interface KindUnderTest {
  kind: 'rotation' | 'reencrypt'
  /** The KEK the rows are seeded under. */
  source: string
  /** The KEK whose rows they all are at the end (and the version they are at). */
  target: { kek: string; version: number }
  /** Starts the run distributed (Step A done, chunks on the queue). */
  start(options: {
    distributed: true
    chunkRows: number
    batchSize: number
    niceRatio: 0
  }): Promise<{
    id: string
    status: string
  }>
  /** The run row now: status, moved (rewrapped / re-encrypted), skipped, failed. */
  find(id: string): Promise<{
    id: string
    status: string
    lastError: string | null
    moved: number
    skipped: number
    failed: number
  }>
}

async function rotationUnderTest(): Promise<KindUnderTest> {
  const kek = kekName('dist')
  await createKek(kek)
  const rotations = await app.container.make(KeyRotationService)
  return {
    kind: 'rotation',
    source: kek,
    target: { kek, version: 2 },
    start: (options) => rotations.rotate(kek, options),
    find: async (id) => {
      const run = await rotations.find(id)
      return { ...run, moved: run.rewrapped }
    },
  }
}

async function reencryptUnderTest(): Promise<KindUnderTest> {
  const from = kekName('dist-from')
  const to = kekName('dist-to')
  await createKek(from)
  await createKek(to)
  const reencrypts = await app.container.make(ReencryptService)
  return {
    kind: 'reencrypt',
    source: from,
    target: { kek: to, version: 1 },
    start: (options) => reencrypts.reencrypt(from, to, options),
    find: async (id) => {
      const run = await reencrypts.find(id)
      return { ...run, moved: run.reencrypted }
    },
  }
}

test.group('distributed runs: chunks as jobs', () => {
  for (const [label, setUp] of [
    ['rotation', rotationUnderTest],
    ['re-encrypt', reencryptUnderTest],
  ] as const) {
    test(`${label}: 3 workers, one SIGKILLed mid-chunk: the run completes, every row moved once and decrypting, concurrent writes kept`, async ({
      assert,
      cleanup,
    }) => {
      const rows = envInt('REWRAP_DISTRIBUTED_ROWS', 200_000)
      const under = await setUp()
      const t0 = Date.now()
      const seeded = await seed(under.source, rows)
      const ids = [...seeded.keys()]
      const before = await plaintextDigests(under.source)
      const tSeeded = Date.now()

      const entries = await app.container.make(EntryService)
      const started = await under.start({
        distributed: true,
        chunkRows: Math.ceil(rows / 12),
        batchSize: 500,
        niceRatio: 0,
      })
      assert.equal(started.status, 'running')

      // Park every chunk mid-way: a row three quarters into each is held, so a worker commits the
      // batches before it and then waits; the kill below lands mid-chunk, nothing timed.
      const chunks = await db
        .from('rewrap_chunks')
        .where({ run_kind: under.kind, run_id: started.id })
        .select('id', 'from_id', 'until_id')
      assert.isAtLeast(chunks.length, 3)
      const middles = chunks.map((c) => {
        const inside = ids.filter(
          (id) =>
            BigInt(id) > BigInt(c.from_id) &&
            (c.until_id === null || BigInt(id) <= BigInt(c.until_id))
        )
        // Past the first batch even when concurrent writes moved some rows of it already.
        return inside[Math.floor((inside.length * 3) / 4)]
      })
      const hold = await holdRows(middles)
      cleanup(() => hold.release())
      const workers = startWorkers(3, cleanup)

      // Concurrent writes for the whole run: every one must be kept.
      const written = new Map<string, unknown>()
      let finished = false
      cleanup(() => {
        finished = true
      })
      let step = 11
      const writer = (async () => {
        while (!finished) {
          step = (step * 1103515245 + 12345) % 2 ** 31
          const id = ids[step % ids.length]
          const data = { rewritten: written.size, id }
          await entries.update(id, data)
          written.set(id, data)
        }
      })()

      // Kill a worker once a chunk it holds has committed at least one batch.
      const victim = workers[0]
      const held = await waitFor(
        async () => {
          const { rows: found } = await db.rawQuery(
            `SELECT id FROM rewrap_chunks WHERE run_kind = ? AND run_id = ?
              AND worker_id LIKE ? AND status = 'running' AND batches >= 1 LIMIT 1`,
            [under.kind, started.id, `%:${victim.child.pid}`]
          )
          return found[0] ? String(found[0].id) : null
        },
        { timeoutMs: 90_000, what: 'a chunk of worker 0 with a committed batch' }
      ).catch((error) => {
        throw new Error(`${error.message}; worker 0: ${victim.output().slice(-3000)}`)
      })
      const { rows: victimJobs } = await db.rawQuery(
        `SELECT worker_id FROM queue_jobs
        WHERE queue = 'rewrap-chunks' AND (data::jsonb #>> '{payload,chunkId}') = ?`,
        [held]
      )
      const victimJob = victimJobs[0]
      victim.child.kill('SIGKILL')
      await victim.exited
      await hold.release()
      const tKilled = Date.now()
      // The job engine's guarantee this design rests on (docs/architecture.md, "Which job
      // engine"): the job of a SIGKILLed worker goes back on the queue within a bound — the
      // stalled threshold (3 s here) + the stalled sweep interval (1.5 s) — and is then taken by
      // the next free worker. 20 s leaves room for a loaded machine.
      await waitFor(
        async () => {
          const { rows: jobs } = await db.rawQuery(
            `SELECT status, worker_id FROM queue_jobs
            WHERE queue = 'rewrap-chunks' AND (data::jsonb #>> '{payload,chunkId}') = ?`,
            [held]
          )
          return jobs.length === 0 || jobs[0].worker_id !== victimJob.worker_id
        },
        { timeoutMs: TAKE_OVER_BOUND_MS, intervalMs: 50, what: 'the killed worker’s job put back' }
      )
      const tRequeued = Date.now()
      await waitFor(
        async () => {
          const row = await db.from('rewrap_chunks').where('id', held).firstOrFail()
          return (
            Number(row.lease_token) >= 2 && !String(row.worker_id).endsWith(`:${victim.child.pid}`)
          )
        },
        { timeoutMs: 170_000, intervalMs: 50, what: 'the killed worker’s chunk taken over' }
      )
      const tTaken = Date.now()

      const run = await waitFor(
        async () => {
          const current = await under.find(started.id)
          return current.status === 'running' ? null : current
        },
        { timeoutMs: 170_000, intervalMs: 200, what: 'the distributed run to end' }
      ).finally(() => (finished = true))
      await writer
      const tDone = Date.now()

      assert.equal(run.status, 'completed', run.lastError ?? '')
      assert.deepEqual(await versionCounts(under.target.kek), { [under.target.version]: rows })
      // The killed worker's chunk was taken over and finished by another worker.
      const chunk = await db.from('rewrap_chunks').where('id', held).firstOrFail()
      assert.equal(chunk.status, 'done')
      assert.notMatch(chunk.worker_id, new RegExp(`:${victim.child.pid}$`))
      assert.isAtLeast(Number(chunk.lease_token), 2)
      // Counters add up: the chunks' moved rows are the run's, and the run's are the rows
      // that really moved (rotated_at is set by the rotation's UPDATE only).
      const sums = await db
        .from('rewrap_chunks')
        .where({ run_kind: under.kind, run_id: run.id })
        .select(db.raw('sum(moved)::bigint AS moved, sum(skipped)::bigint AS skipped'))
        .first()
      assert.equal(Number(sums.moved), run.moved)
      assert.equal(Number(sums.skipped), run.skipped)
      const { rows: rotated } = await db.rawQuery(
        `SELECT count(*)::int AS n FROM vault_entries WHERE kek_name = ? AND rotated_at IS NOT NULL`,
        [under.target.kek]
      )
      assert.equal(rotated[0].n, run.moved)
      assert.isAtLeast(run.moved, rows - written.size)
      assert.equal(run.failed, 0)
      // The status shows the chunks and the workers: every chunk done, the victim and others.
      const allStats = await new ChunkStore().stats(under.kind, [run.id])
      const stats = allStats.get(run.id)!
      assert.isAtLeast(stats.done, chunks.length)
      assert.equal(stats.pending + stats.running, 0)
      assert.isAtLeast(stats.workers.length, 2)
      // Every row decrypts: the untouched ones to their original data, the written ones to
      // the last value written.
      const after = await plaintextDigests(under.target.kek)
      assert.equal(after.size, rows)
      for (const [id, digest] of before) {
        if (!written.has(id)) assert.equal(after.get(id), digest, `entry ${id}`)
      }
      for (const [id, data] of written) {
        const entry = await entries.find(id)
        assert.deepEqual(entry.data, data)
      }
      assert.isAbove(written.size, 0)
      console.log(
        `distributed ${label}: ${rows} rows; seed+digest ${tSeeded - t0} ms; run ${tDone - tSeeded} ms ` +
          `(kill after ${tKilled - tSeeded} ms; job back on the queue ${tRequeued - tKilled} ms and chunk taken over ${tTaken - tKilled} ms after the kill); ${written.size} concurrent writes; ` +
          `moved ${run.moved}, skipped ${run.skipped}`
      )
      // The other workers stop on SIGTERM after their batch (graceful), exit 0.
      for (const worker of workers.slice(1)) worker.child.kill('SIGTERM')
      for (const worker of workers.slice(1)) {
        assert.equal(await worker.exited, 0, worker.output().slice(-2000))
      }
    }).timeout(300_000)
  }
})

test.group('distributed runs: commands', () => {
  test('rotate:kek --workers 2 cuts the run into chunks, works them with 2 local workers, exits 0', async ({
    assert,
  }) => {
    const kek = kekName('dist-cli')
    await createKek(kek)
    await seed(kek, 3000)
    const ace = spawnAce(['rotate:kek', kek, '--workers', '2', '--batch-size', '200', '--json'], {
      REWRAP_WORKER_LEASE_MS: '3000',
    })
    const code = await ace.exited
    assert.equal(code, 0, ace.output().slice(-2000))
    const run = JSON.parse(ace.output().trim().split('\n').at(-1)!)
    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 3000)
    assert.equal(run.options.distributed, true)
    assert.deepEqual(await versionCounts(kek), { 2: 3000 })
    const allStats = await new ChunkStore().stats('rotation', [run.id])
    const stats = allStats.get(run.id)!
    assert.equal(stats.pending + stats.running, 0)
    assert.isAtLeast(stats.done, 1)
    // Paced by the latency budget (the default): one of the workers judged the run's duty.
    const pacing = await db
      .from('run_pacing')
      .where({ run_kind: 'rotation', run_id: run.id })
      .firstOrFail()
    const judge = String(pacing.judge_id).replace(/:[0-9a-f]{8}$/, '')
    assert.include(
      stats.workers.map((w) => w.workerId),
      judge
    )
  }).timeout(120_000)

  test('reencrypt --workers 2 that fails after starting its workers stops them before exiting', async ({
    assert,
  }) => {
    const kek = kekName('dist-fail')
    await createKek(kek)
    await seed(kek, 10)
    // The workers inherit the command's environment: the mark finds them, and only them.
    const mark = `w${Date.now()}${Math.random().toString(16).slice(2)}`
    const ace = spawnAce(['reencrypt', '--from', kek, '--to', `${kek}-missing`, '--workers', '2'], {
      REWRAP_TEST_WORKER_MARK: mark,
    })
    const code = await ace.exited
    assert.notEqual(code, 0, ace.output().slice(-2000))
    assert.deepEqual(processesMarked(mark), [], 'no rewrap:worker left behind')
  }).timeout(120_000)
})

/** Pids of live processes whose environment holds REWRAP_TEST_WORKER_MARK=`mark`. */
function processesMarked(mark: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0')
      if (env.includes(`REWRAP_TEST_WORKER_MARK=${mark}`)) found.push(Number(entry))
    } catch {
      // Exited meanwhile, or not ours.
    }
  }
  return found
}
