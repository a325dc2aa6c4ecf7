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
} from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'
import {
  advisoryLocksReleased,
  backendsGone,
  holdRows,
  holdWhere,
  type RowHold,
} from '#tests/helpers/pg_sessions'
import { spawnAce } from '#tests/helpers/ace_child'

/**
 * `rotate:kek <kek>` (batches of 100) in a child process, parked at the
 * batch holding row `ids[at]`: resolves once its commit waits for that row
 * (every batch before it committed), with the held row and the waiting
 * backends. Nothing is timed: the run cannot pass the row until released.
 */
async function startParkedRotateKek(
  kek: string,
  ids: string[],
  at: number,
  cleanup: (fn: () => Promise<void> | void) => void,
  flags: string[] = ['--json']
) {
  const hold = await holdRows([ids[at]])
  const ace = spawnAce(['rotate:kek', kek, '--batch-size', '100', ...flags])
  cleanup(async () => {
    ace.killIfRunning()
    await hold.release()
  })
  const waiting = await hold.blocked().catch((error) => {
    throw new Error(`${error.message}; rotate:kek output: ${ace.output().slice(-2000)}`)
  })
  const running = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
  return { ...ace, hold, waiting, running }
}

test.group('rotation: zero downtime', () => {
  // Full speed overlaps the next batch's read and rewrap with this batch's UPDATE; paced
  // (readers and writers are foreground sessions) runs one step at a time.
  for (const [mode, niceRatio] of [
    ['full speed', 0],
    ['paced', 4],
  ] as const) {
    test(`reads stay correct and no concurrent write is lost while a rotation runs (${mode})`, async ({
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
      let batches = 0
      const written = new Set<string>()
      // Between two batches the rotation waits for at least one more read and
      // one more write: reads and writes interleave with every batch, however
      // fast or slow the machine.
      const rotation = rotations
        .rotate(kek, {
          batchSize: 100,
          niceRatio,
          onProgress: async () => {
            batches++
            const [r, w] = [reads, writes]
            await waitFor(() => reads > r && writes > w, {
              intervalMs: 1,
              what: 'a read and a write between two batches',
            })
          },
        })
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

      assert.isAtLeast(batches * 100, run.rewrapped + run.skipped)
      assert.isAtLeast(reads, batches)
      assert.isAtLeast(writes, batches)
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
  }
})

test.group('rotation: crash safety', () => {
  test('rotate:kek killed with SIGKILL mid-run, then resumed, finishes with nothing lost or double-applied', async ({
    assert,
    cleanup,
  }) => {
    const kek = kekName('crash')
    await createKek(kek)
    const expected = await seed(kek, 4000)

    // Killed while its 21st batch (rows 2000-2099) waits for a held row.
    const { child, exited, running, hold, waiting } = await startParkedRotateKek(
      kek,
      [...expected.keys()],
      2050,
      cleanup
    )
    assert.equal(running.status, 'running')
    assert.equal(Number(running.rewrapped), 2000, 'twenty batches committed before the held row')
    child.kill('SIGKILL')
    assert.isNull(await exited, 'killed by the signal')
    // The dead process's waiting statement ends (committed or not) once the row is free.
    await hold.release()
    await backendsGone(waiting)

    const afterCrash = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
    assert.equal(afterCrash.status, 'running', 'the killed run stays resumable')
    const counts = await versionCounts(kek)
    assert.oneOf(counts[2], [2000, 2100], 'nothing past the parked batch')
    assert.equal(counts[1], 4000 - counts[2])
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

  test('rotate:kek killed between the KMS rotate and its next run-row write: the resumed run does not rotate again', async ({
    assert,
    cleanup,
  }) => {
    const kek = kekName('stepa')
    await createKek(kek)
    const expected = await seed(kek, 200)

    // Step A parks twice: its KMS rotate waits for the KEK's keyring row, then
    // the run-row write that follows it waits for the run row.
    const keyring = await holdWhere('kms_keys', 'name = $1', [kek], 1)
    const ace = spawnAce(['rotate:kek', kek, '--json'])
    let runRow: RowHold | undefined
    cleanup(async () => {
      ace.killIfRunning()
      await keyring.release()
      await runRow?.release()
    })
    await keyring.blocked()
    const started = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
    assert.equal(started.status, 'running')
    assert.equal(started.base_version, 1)
    assert.isNull(started.target_version, 'Step A not recorded yet')
    runRow = await holdWhere('key_rotations', 'id = $1', [started.id], 1)
    await keyring.release()
    const waiting = await runRow.blocked()
    assert.equal(await latestVersion(kek), 2, 'the KMS has rotated')

    // The crash: the process dies, and its unfinished write with it.
    ace.child.kill('SIGKILL')
    assert.isNull(await ace.exited)
    await db.rawQuery('SELECT pg_terminate_backend(pid) FROM unnest(?::int[]) AS pid', [waiting])
    await backendsGone(waiting)
    await runRow.release()
    const afterCrash = await db.from('key_rotations').where('id', started.id).firstOrFail()
    assert.equal(afterCrash.status, 'running')
    assert.isNull(afterCrash.target_version, 'the crash lost the write after the KMS rotate')
    await advisoryLocksReleased()

    const rotations = await app.container.make(KeyRotationService)
    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.id, String(started.id))
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.targetVersion, 2, 'the version the KMS already made')
    assert.equal(await latestVersion(kek), 2, 'rotated once, not again')
    assert.deepEqual(await versionCounts(kek), { 2: 200 })
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
      cleanup,
    }) => {
      const kek = kekName('stop')
      await createKek(kek)
      const expected = await seed(kek, 3000)
      // Signalled while its 11th batch (rows 1000-1099) waits for a held row.
      const { child, output, exited, hold } = await startParkedRotateKek(
        kek,
        [...expected.keys()],
        1050,
        cleanup,
        []
      )
      child.kill(signal)
      await waitFor(() => output().includes('Stopping after the current batch'), {
        what: `rotate:kek to take the ${signal}`,
      })
      await hold.release()
      assert.equal(await exited, 130, output().slice(-300))
      const run = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
      assert.equal(run.status, 'cancelled')
      assert.equal(run.cancelled_by, by)
      assert.equal(Number(run.rewrapped), 1100, 'the parked batch finished, no batch after it')
      assert.deepEqual(await versionCounts(kek), { 1: 1900, 2: 1100 })
    }).timeout(120_000)
  }
})
