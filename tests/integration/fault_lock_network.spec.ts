/*
|--------------------------------------------------------------------------
| The run's lock lost, its connections cut: never a write without the lock
|--------------------------------------------------------------------------
*/
import { test } from '@japa/runner'
import pg from 'pg'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { lockKeys } from '#services/advisory_lock'
import { EntryService } from '#services/entry_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { RotationStore } from '#services/rotation_store'
import { spawnAce } from '#tests/helpers/ace_child'
import {
  assertAllDecrypt,
  createKek,
  kekName,
  latestVersion,
  seed,
  versionCounts,
} from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'
import { FaultyProxy } from '#tests/helpers/tcp_proxy'

const LOCK_KEY_SQL = `hashtextextended($1, 0)`

/** The pid of the session holding the rotation lock of `kek`. */
async function lockPid(kek: string): Promise<number> {
  const { rows } = await db.rawQuery(
    `SELECT l.pid FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(?, 0)`,
    [`rewrap:rotation:${lockKeys.rotation(kek)}`]
  )
  return Number(rows[0].pid)
}

/** A session of the test that takes the rotation lock of `kek` (waiting for it). */
async function takeLock(kek: string) {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
  await client.connect()
  await client.query(`SELECT pg_advisory_lock(${LOCK_KEY_SQL})`, [
    `rewrap:rotation:${lockKeys.rotation(kek)}`,
  ])
  return { release: () => client.end() }
}

test.group('reliability: the run lock', () => {
  test('lock session killed and the lock taken by another session: the run stops with E_LOCK_LOST and writes nothing more; --resume completes', async ({
    assert,
  }) => {
    const kek = kekName('lock')
    await createKek(kek)
    const expected = await seed(kek, 1500)
    const rotations = await app.container.make(KeyRotationService)
    let other: { release(): Promise<void> } | undefined
    let movedAtKill = -1
    try {
      await rotations.rotate(kek, {
        batchSize: 100,
        niceRatio: 0,
        onProgress: async () => {
          if (other) return
          await db.rawQuery('SELECT pg_terminate_backend(?)', [await lockPid(kek)])
          other = await takeLock(kek)
          const counts = await versionCounts(kek)
          movedAtKill = counts[2]
        },
      })
      assert.fail('expected E_LOCK_LOST')
    } catch (error) {
      assert.equal((error as any).code, 'E_LOCK_LOST', String(error))
    }
    assert.isAbove(movedAtKill, 0)
    const counts = await versionCounts(kek)
    assert.equal(counts[2], movedAtKill, 'no batch written without the lock')
    const run = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
    assert.equal(run.status, 'running', 'left to the lock holder, resumable')
    assert.equal(Number(run.rewrapped), movedAtKill)

    await other!.release()
    const resumed = await rotations.rotate(kek, { resume: true, niceRatio: 0 })
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.rewrapped, 1500)
    assert.deepEqual(await versionCounts(kek), { 2: 1500 })
    await assertAllDecrypt(assert, expected)
  }).timeout(120_000)

  test('lock session killed, nobody else takes it: the run takes its lock back and completes', async ({
    assert,
  }) => {
    const kek = kekName('relock')
    await createKek(kek)
    const expected = await seed(kek, 1500)
    const rotations = await app.container.make(KeyRotationService)
    let kills = 0
    const run = await rotations.rotate(kek, {
      batchSize: 100,
      niceRatio: 0,
      onProgress: async (progress) => {
        if (kills >= 2 || progress.done < 400 * (kills + 1)) return
        kills++
        await db.rawQuery('SELECT pg_terminate_backend(?)', [await lockPid(kek)])
      },
    })
    assert.equal(kills, 2)
    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 1500, 'every row once')
    assert.deepEqual(await versionCounts(kek), { 2: 1500 })
    assert.equal(await latestVersion(kek), 2, 'rotated once')
    await assertAllDecrypt(assert, expected)
  }).timeout(120_000)

  test('a batch commit whose lock session is not the holder writes nothing (the fence)', async ({
    assert,
  }) => {
    const kek = kekName('fence')
    await createKek(kek)
    await seed(kek, 10)
    const store = await app.container.make(RotationStore)
    const run = await store.createRun({
      kekName: kek,
      baseVersion: 1,
      targetVersion: 1,
      rotateKek: false,
      options: {},
      trigger: 'cli',
      requestedBy: null,
    })
    const rows = await store.readBatch(kek, 1, '0', 10)
    const commit = {
      runId: run.id,
      target: 2,
      cursorVersion: 1,
      cursorId: rows[rows.length - 1].id,
      ids: rows.map((r) => r.id),
      oldWrapped: rows.map((r) => r.wrappedDek),
      newWrapped: rows.map((r) => r.wrappedDek),
      failedIds: [],
      failedCodes: [],
    }
    // A session that is not the lock's holder (no one holds it).
    const { rows: me } = await db.rawQuery('SELECT pg_backend_pid() AS pid')
    const fence = { pid: Number(me[0].pid), key: `rewrap:rotation:${kek}` }
    await assert.rejects(() => store.commitBatch({ ...commit, fence }), /lost its lock/)
    assert.deepEqual(await versionCounts(kek), { 1: 10 }, 'no row written')
    const after = await store.find(run.id)
    assert.equal(after!.cursorId, '0', 'cursor not moved')
    assert.equal(after!.rewrapped, 0)
    await db.from('key_rotations').where('id', run.id).delete()
  })
})

test.group('reliability: connections cut, delayed and partitioned by a proxy', () => {
  test('rotate:kek through a proxy that resets every connection 3 times, adds latency and partitions once: completes, nothing lost, concurrent writes kept', async ({
    assert,
  }) => {
    const kek = kekName('proxy')
    await createKek(kek)
    const expected = await seed(kek, 3000)
    const database = new URL(process.env.DATABASE_URL!)
    const proxy = await FaultyProxy.start({ port: Number(database.port || 5432) })
    const entries = await app.container.make(EntryService)
    const ids = [...expected.keys()]
    let writing = true
    let writes = 0
    const written = new Set<string>()
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        const id = ids[(n * 7) % ids.length]
        const data = { rewritten: n, id }
        await entries.update(id, data)
        expected.set(id, data)
        written.add(id)
        writes++
      }
    })()
    const child = spawnAce(
      ['rotate:kek', kek, '--batch-size', '100', '--sleep-ms', '10', '--nice-ratio', '0', '--json'],
      { DATABASE_URL: proxy.rewrite(process.env.DATABASE_URL!) }
    )
    const committed = async () => {
      const row = await db.from('key_rotations').where('kek_name', kek).first()
      return Number(row?.rewrapped ?? 0)
    }
    try {
      for (const at of [300, 900, 1500]) {
        await waitFor(async () => child.child.exitCode === null && (await committed()) >= at)
        assert.isAbove(proxy.resetAll(), 0, 'connections to cut')
      }
      proxy.latencyMs = 5
      await waitFor(async () => (await committed()) >= 1800)
      // A partition: every byte held both ways (the child's queries hang, nothing fails).
      proxy.partition()
      await waitFor(async () => proxy.open > 0, { timeoutMs: 5_000 })
      proxy.heal()
      proxy.latencyMs = 0
      assert.equal(await child.exited, 0, child.output().slice(-800))
    } finally {
      writing = false
      await writer
      await proxy.close()
    }
    const run = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
    assert.equal(run.status, 'completed')
    assert.isAtMost(Number(run.rewrapped) + Number(run.skipped), 3000)
    assert.isAtLeast(Number(run.rewrapped), 3000 - written.size)
    assert.isAbove(writes, 0)
    assert.deepEqual(await versionCounts(kek), { 2: 3000 })
    assert.equal(await latestVersion(kek), 2, 'rotated once')
    await assertAllDecrypt(assert, expected)
  }).timeout(180_000)
})
