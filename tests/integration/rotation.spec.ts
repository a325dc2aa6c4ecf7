import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { KeyRotationService, type RotateOptions } from '#services/key_rotation_service'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { RotationStore } from '#services/rotation_store'
import {
  assertAllDecrypt,
  createKek,
  kekName,
  rotateInKms,
  latestVersion,
  seed,
  versionCounts,
} from '#tests/helpers/rotation'
import { rejectsWith } from '#tests/helpers/errors'
import { appConnectionString } from '#tests/helpers/pg_sessions'

async function service() {
  return app.container.make(KeyRotationService)
}

async function rotateKek(kek: string, options?: RotateOptions) {
  const rotations = await service()
  return rotations.rotate(kek, options)
}

test.group('rotation: rewrap', () => {
  test('mixed versions all reach the target; other KEKs are untouched; data intact', async ({
    assert,
  }) => {
    const kek = kekName()
    const other = kekName('other')
    await createKek(kek)
    await createKek(other)
    const expected = await seed(kek, 250)
    await rotateInKms(kek)
    for (const [id, data] of await seed(kek, 250, 250)) expected.set(id, data)
    await rotateInKms(kek)
    for (const [id, data] of await seed(kek, 250, 500)) expected.set(id, data)
    await seed(other, 120)
    const otherBefore = await db.from('vault_entries').where('kek_name', other).orderBy('id')

    assert.deepEqual(await versionCounts(kek), { 1: 250, 2: 250, 3: 250 })
    const run = await rotateKek(kek, { batchSize: 100 })

    assert.equal(run.status, 'completed')
    assert.equal(run.targetVersion, 4)
    assert.equal(run.totalRows, 750)
    assert.equal(run.rewrapped, 750)
    assert.equal(run.skipped + run.failed, 0)
    assert.deepEqual(await versionCounts(kek), { 4: 750 })
    const rows = await db
      .from('vault_entries')
      .where('kek_name', kek)
      .select('wrapped_dek', 'rotated_at')
    assert.isTrue(rows.every((r) => r.wrapped_dek.startsWith('vault:v4:') && r.rotated_at))
    assert.deepEqual(
      await db.from('vault_entries').where('kek_name', other).orderBy('id'),
      otherBefore
    )
    await assertAllDecrypt(assert, expected)
  })

  test('a second run right after a completed one rewraps nothing', async ({ assert }) => {
    const kek = kekName()
    await createKek(kek)
    await seed(kek, 300)
    const rotations = await service()
    await rotations.rotate(kek, { batchSize: 128 })
    const before = await db.from('vault_entries').where('kek_name', kek).orderBy('id')

    const again = await rotations.rotate(kek, { rotate: false })
    assert.equal(again.status, 'completed')
    assert.equal(again.targetVersion, 2)
    assert.equal(again.totalRows, 0)
    assert.equal(again.rewrapped, 0)
    assert.deepEqual(await db.from('vault_entries').where('kek_name', kek).orderBy('id'), before)
  })

  test('an explicit target version rewraps to it without rotating', async ({ assert }) => {
    const kek = kekName()
    await createKek(kek)
    await seed(kek, 50)
    await rotateInKms(kek)
    await rotateInKms(kek)
    const run = await rotateKek(kek, { targetVersion: 2 })
    assert.equal(run.status, 'completed')
    assert.isFalse(run.rotateKek)
    assert.deepEqual(await versionCounts(kek), { 2: 50 })
    assert.equal(await latestVersion(kek), 3)
  })

  test('a target version above the latest is refused', async ({ assert }) => {
    const kek = kekName()
    await createKek(kek)
    const error = await rejectsWith(
      service().then((s) => s.rotate(kek, { targetVersion: 9 })),
      'E_ROTATION_INVALID'
    )
    assert.match(error.message, /between 1/)
  })

  test('an unknown KEK is refused with E_KEK_NOT_FOUND', async ({ assert }) => {
    try {
      await rotateKek(kekName('missing'))
      assert.fail('expected an error')
    } catch (error) {
      assert.equal((error as any).code, 'E_KEK_NOT_FOUND')
    }
  })

  test('dry run counts and estimates, changing nothing', async ({ assert }) => {
    const kek = kekName()
    await createKek(kek)
    await seed(kek, 40)
    const rotations = await service()
    const plan = await rotations.plan(kek, { maxRate: 10 })
    assert.equal(plan.latestVersion, 1)
    assert.equal(plan.targetVersion, 2)
    assert.equal(plan.staleRows, 40)
    assert.deepEqual(plan.rowsPerVersion, [{ version: 1, rows: 40 }])
    assert.equal(plan.estimatedSeconds, 4)
    assert.equal(await latestVersion(kek), 1)
    assert.deepEqual(await versionCounts(kek), { 1: 40 })
    assert.lengthOf(await db.from('key_rotations').where('kek_name', kek), 0)
  })
})

test.group('rotation: failures, lock, cancel, resume', () => {
  test('items the KMS rejects are recorded and the run ends completed_with_errors', async ({
    assert,
  }) => {
    const kek = kekName()
    await createKek(kek)
    const expected = await seed(kek, 200)
    const ids = [...expected.keys()]
    const broken = [ids[3], ids[77], ids[150]]
    // Corrupt three wrapped DEKs (same version prefix, bytes that do not authenticate).
    await db.rawQuery(
      `UPDATE vault_entries SET wrapped_dek = 'vault:v1:' || encode(sha256(id::text::bytea), 'base64') WHERE id = ANY(?::bigint[])`,
      [{ toPostgres: () => broken } as any]
    )
    const rotations = await service()
    const run = await rotations.rotate(kek, { batchSize: 64 })
    assert.equal(run.status, 'completed_with_errors')
    assert.equal(run.rewrapped, 197)
    assert.equal(run.failed, 3)
    assert.notInclude(run.lastError ?? '', 'vault:v1:')
    const failures = await new RotationStore().failures(run.id)
    assert.deepEqual(
      failures.map((f) => f.entryId),
      broken
    )
    assert.isTrue(failures.every((f) => f.errorCode === 'E_CIPHERTEXT_INVALID'))
    assert.deepEqual(await versionCounts(kek), { 1: 3, 2: 197 })

    // The next run retries them (they still fail: the data is really broken).
    const retry = await rotations.rotate(kek, { rotate: false })
    assert.equal(retry.totalRows, 3)
    assert.equal(retry.failed, 3)
    assert.equal(retry.status, 'completed_with_errors')
  })

  test('the run store and the advisory lock come from the container', async ({ assert }) => {
    const kek = kekName()
    await createKek(kek)
    await seed(kek, 30)
    const committed: number[] = []
    const locked: string[] = []
    class RecordingStore extends RotationStore {
      override commitBatch(input: Parameters<RotationStore['commitBatch']>[0]) {
        committed.push(input.ids.length + input.failedIds.length)
        return super.commitBatch(input)
      }
    }
    class RecordingLock extends AdvisoryLock {
      override tryAcquire(key: string) {
        locked.push(key)
        return super.tryAcquire(key)
      }
    }
    app.container.swap(RotationStore, () => new RecordingStore())
    app.container.swap(AdvisoryLock, () => new RecordingLock())
    try {
      const run = await rotateKek(kek, { batchSize: 10 })
      assert.equal(run.status, 'completed')
      assert.deepEqual(committed, [10, 10, 10])
      // The rotation lock's key is the KEK's name, as before AdvisoryLock named it.
      assert.deepEqual(locked, [kek])
    } finally {
      app.container.restore(RotationStore)
      app.container.restore(AdvisoryLock)
    }
  })

  test('a second rotation of the same KEK answers E_ROTATION_IN_PROGRESS', async ({ assert }) => {
    const kek = kekName()
    await createKek(kek)
    await seed(kek, 10)
    const other = await new AdvisoryLock().tryAcquireOn(
      appConnectionString(),
      lockKeys.rotation(kek)
    )
    assert.isNotNull(other)
    try {
      await rotateKek(kek)
      assert.fail('expected E_ROTATION_IN_PROGRESS')
    } catch (error) {
      assert.equal((error as any).code, 'E_ROTATION_IN_PROGRESS')
    } finally {
      await other!.release()
    }
    assert.equal(await latestVersion(kek), 1, 'not rotated')
    const run = await rotateKek(kek)
    assert.equal(run.status, 'completed')
  })

  test('cancel finishes the current batch; an unfinished run blocks a new rotation; resume completes it without rotating again', async ({
    assert,
  }) => {
    const kek = kekName()
    await createKek(kek)
    const expected = await seed(kek, 600)
    const rotations = await service()
    const controller = new AbortController()
    const cancelled = await rotations.rotate(kek, {
      batchSize: 100,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.done >= 200) controller.abort()
      },
    })
    assert.equal(cancelled.status, 'cancelled')
    assert.equal(cancelled.rewrapped, 200)
    assert.deepEqual(await versionCounts(kek), { 1: 400, 2: 200 })

    try {
      await rotations.rotate(kek)
      assert.fail('expected E_ROTATION_UNFINISHED')
    } catch (error) {
      assert.equal((error as any).code, 'E_ROTATION_UNFINISHED')
    }

    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.id, cancelled.id)
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.targetVersion, 2)
    assert.equal(resumed.rewrapped, 600)
    assert.equal(resumed.skipped + resumed.failed, 0)
    assert.equal(await latestVersion(kek), 2)
    assert.deepEqual(await versionCounts(kek), { 2: 600 })
    await assertAllDecrypt(assert, expected)
  })

  test('cancel from another process (the run row) stops after the current batch', async ({
    assert,
  }) => {
    const kek = kekName()
    await createKek(kek)
    await seed(kek, 500)
    const rotations = await service()
    let asked = false
    const run = await rotations.rotate(kek, {
      batchSize: 100,
      onProgress: async (p) => {
        if (!asked) {
          asked = true
          await rotations.cancel(p.run.id)
        }
      },
    })
    assert.equal(run.status, 'cancelled')
    assert.isAtMost(run.rewrapped, 200)
    assert.isFalse(run.cancelRequested)
  })

  test('--resume without an unfinished run is refused', async ({ assert }) => {
    const kek = kekName()
    await createKek(kek)
    try {
      await rotateKek(kek, { resume: true })
      assert.fail('expected E_NO_ROTATION_TO_RESUME')
    } catch (error) {
      assert.equal((error as any).code, 'E_NO_ROTATION_TO_RESUME')
    }
  })

  // A lost advisory lock: tests/integration/fault_lock_network.spec.ts (another session takes it:
  // the run stops with E_LOCK_LOST and writes nothing more; nobody does: the run takes it back
  // and completes; a commit from a session that does not hold it writes nothing).

  test('rows that keep arriving below the target end the run after maxPasses passes', async ({
    assert,
  }) => {
    const maxPasses = app.config.get<number>('rewrap.rotation.maxPasses')
    assert.equal(maxPasses, 3)
    const kek = kekName('passes')
    await createKek(kek)
    await seed(kek, 300)
    // The 20 lowest rows are taken out; one comes back after every batch, highest
    // id first, so each is below every id the pass has read: never seen by the
    // pass it arrives in, always left for the next one.
    const holes = await db.from('vault_entries').where('kek_name', kek).orderBy('id').limit(20)
    await db
      .from('vault_entries')
      .whereIn(
        'id',
        holes.map((row) => row.id)
      )
      .delete()
    const comingBack = [...holes].reverse()
    const passes: number[] = []
    const run = await rotateKek(kek, {
      batchSize: 50,
      niceRatio: 0,
      onProgress: async ({ run: progress }) => {
        passes.push(progress.pass)
        const row = comingBack.shift()
        if (row) await db.table('vault_entries').insert(row)
      },
    })
    // Pass 1: 280 rows in 6 batches (6 rows come back); pass 2: those 6 in one
    // batch (1 comes back); pass 3: that one (1 comes back) — and the bound ends it.
    assert.deepEqual(passes, [1, 1, 1, 1, 1, 1, 2, 3])
    assert.equal(run.status, 'completed_with_errors')
    assert.equal(run.pass, maxPasses)
    assert.equal(run.lastError, '1 rows still below version 2; see key_rotation_failures')
    assert.equal(run.rewrapped, 280 + 6 + 1)
    assert.deepEqual(await versionCounts(kek), { 1: 1, 2: 287 })
  }).timeout(60_000)
})
