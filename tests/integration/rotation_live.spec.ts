import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { EntryService } from '#services/entry_service'
import { KeyRotationService } from '#services/key_rotation_service'
import {
  assertAllDecrypt,
  createKek,
  kekName,
  latestVersion,
  seed,
  versionCounts,
  waitFor,
} from '#tests/helpers/rotation'
import { spawnAce } from '#tests/helpers/ace_child'

/**
 * `rotate:kek <kek> --json` in a child process, slowed down (batches of 100,
 * 25 ms sleeps); resolves with its run row once `rows` rows are committed.
 */
async function startRotateKek(kek: string, rows: number) {
  const ace = spawnAce(['rotate:kek', kek, '--batch-size', '100', '--sleep-ms', '25', '--json'])
  const running = await waitFor(async () => {
    const row = await db.from('key_rotations').where('kek_name', kek).first()
    return row && Number(row.rewrapped) >= rows ? row : null
  }, 60_000)
  return { ...ace, running }
}

test.group('rotation: zero downtime', () => {
  test('reads stay correct and no concurrent write is lost while a rotation runs', async ({
    assert,
  }) => {
    const kek = kekName('live')
    await createKek(kek)
    const expected = await seed(kek, 3000)
    const ids = [...expected.keys()]
    const entries = await app.container.make(EntryService)
    const rotations = await app.container.make(KeyRotationService)

    let running = true
    let reads = 0
    let writes = 0
    const written = new Set<string>()
    const rotation = rotations
      .rotate(kek, { batchSize: 100, sleepMs: 2 })
      .finally(() => (running = false))

    // Deterministic pseudo-random walk over the ids.
    let seedValue = 7
    const next = () => (seedValue = (seedValue * 1103515245 + 12345) % 2 ** 31)
    const worker = async (writer: boolean) => {
      while (running) {
        // Writers take odd positions, readers even ones: a read then always
        // knows the exact value to expect.
        const slot = next() % (ids.length / 2)
        const id = ids[slot * 2 + (writer ? 1 : 0)]
        if (writer) {
          const data = { rewritten: writes, id }
          expected.set(id, data)
          written.add(id)
          await entries.update(id, data)
          writes++
        } else {
          const entry = await entries.find(id)
          assert.deepEqual(entry.data, expected.get(id))
          reads++
        }
      }
    }
    await Promise.all([worker(false), worker(false), worker(true), rotation])
    const run = await rotation

    assert.isAbove(reads, 20)
    assert.isAbove(writes, 10)
    assert.equal(run.status, 'completed')
    // Rows a writer moved to the new version before the scan reached them
    // are neither rewrapped nor skipped; every other row was rewrapped.
    assert.isAtMost(run.rewrapped + run.skipped, run.totalRows)
    assert.isAtLeast(run.rewrapped, run.totalRows - written.size)
    assert.equal(run.failed, 0)
    assert.deepEqual(await versionCounts(kek), { 2: 3000 })
    // Every row decrypts to the last value written to it (no lost update).
    await assertAllDecrypt(assert, expected)
  }).timeout(120_000)
})

test.group('rotation: crash safety', () => {
  test('rotate:kek killed with SIGKILL mid-run, then resumed, finishes with nothing lost or double-applied', async ({
    assert,
  }) => {
    const kek = kekName('crash')
    await createKek(kek)
    const expected = await seed(kek, 4000)

    // Kill it once it has committed some batches, long before it is done.
    const { child, output, exited, running } = await startRotateKek(kek, 500)
    child.kill('SIGKILL')
    await exited
    assert.equal(running.status, 'running')

    const afterCrash = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
    assert.equal(afterCrash.status, 'running', 'the killed run stays resumable')
    const counts = await versionCounts(kek)
    assert.isAbove(counts[1] ?? 0, 0, `killed too late: ${output().slice(-300)}`)
    assert.equal(Number(afterCrash.rewrapped), counts[2], 'counter matches rows committed')

    const rotations = await app.container.make(KeyRotationService)
    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.id, String(afterCrash.id))
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.targetVersion, 2)
    assert.equal(resumed.rewrapped, 4000)
    assert.equal(resumed.skipped + resumed.failed, 0)
    assert.deepEqual(await versionCounts(kek), { 2: 4000 })
    assert.equal(await latestVersion(kek), 2, 'rotated once')
    await assertAllDecrypt(assert, expected)
  }).timeout(120_000)
})

test.group('rotation: stopping rotate:kek', () => {
  for (const [signal, by] of [
    ['SIGINT', 'operator'],
    ['SIGTERM', 'shutdown'],
  ] as const) {
    test(`${signal} finishes the batch, exits 130, and records the run as cancelled by ${by}`, async ({
      assert,
    }) => {
      const kek = kekName('stop')
      await createKek(kek)
      await seed(kek, 3000)
      const { child, output, exited } = await startRotateKek(kek, 300)
      child.kill(signal)
      assert.equal(await exited, 130, output().slice(-300))
      const run = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
      assert.equal(run.status, 'cancelled')
      assert.equal(run.cancelled_by, by)
      const counts = await versionCounts(kek)
      assert.equal(Number(run.rewrapped), counts[2], 'stopped on a batch boundary')
      assert.isAbove(counts[1] ?? 0, 0, 'stopped before the end')
    }).timeout(120_000)
  }
})
