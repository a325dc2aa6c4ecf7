import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import type { ApiResponse } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { ReencryptService } from '#services/reencrypt_service'
import { ReencryptStore } from '#services/reencrypt_store'
import { createToken } from '#tests/helpers/auth'
import { advisoryLocksReleased, holdRows } from '#tests/helpers/pg_sessions'
import { assertAllDecrypt, createKek, kekName, seed, versionCounts } from '#tests/helpers/rotation'

/*
| Re-encrypt runs over HTTP: follow them (GET /reencrypts, /reencrypts/:id),
| see a dead one as stalled, cancel a live one from another process.
*/

function assertError(assert: any, response: ApiResponse, status: number, code: string) {
  assert.equal(response.status(), status, response.text())
  assert.equal(response.body().errors[0].code, code, response.text())
}

async function rowsUnder(kek: string) {
  const [row] = await db.from('vault_entries').where('kek_name', kek).count('* as n')
  return Number(row.n)
}

test.group('reencrypts API', (group) => {
  let read: string
  let admin: string
  group.setup(async () => {
    read = await createToken(['rotation:read'])
    admin = await createToken(['rotation:admin'], {
      name: `fn-re-admin-${randomBytes(3).toString('hex')}`,
    })
  })

  test('auth: 401 without a token, 403 without the ability; unknown runs are 404', async ({
    client,
    assert,
  }) => {
    const routes = [
      { method: 'get', path: '/reencrypts', ability: 'read' },
      { method: 'get', path: '/reencrypts/1', ability: 'read' },
      { method: 'post', path: '/reencrypts/1/cancel', ability: 'admin' },
    ] as const
    for (const route of routes) {
      assertError(assert, await client[route.method](route.path), 401, 'E_UNAUTHORIZED_ACCESS')
      const other = route.ability === 'read' ? admin : read
      assertError(
        assert,
        await client[route.method](route.path).bearerToken(other),
        403,
        'E_FORBIDDEN'
      )
    }
    for (const id of ['987654321012', '99999999999999999999']) {
      assertError(
        assert,
        await client.get(`/reencrypts/${id}`).bearerToken(read),
        404,
        'E_REENCRYPT_NOT_FOUND'
      )
      assertError(
        assert,
        await client.post(`/reencrypts/${id}/cancel`).bearerToken(admin),
        404,
        'E_REENCRYPT_NOT_FOUND'
      )
    }
  })

  test('cancel a running re-encrypt from another process → 202; it stops after its batch, resumable; rerun completes it', async ({
    client,
    assert,
    cleanup,
  }) => {
    const from = kekName('re-cancel')
    const to = kekName('re-target')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 1500)
    const ids = [...expected.keys()]

    // The run parks at its 15th batch (rows 700-749): one of them is held.
    const hold = await holdRows([ids[720]])
    cleanup(() => hold.release())
    const service = await app.container.make(ReencryptService)
    const running = service.reencrypt(from, to, { batchSize: 50, niceRatio: 0 })
    running.catch(() => {})
    await hold.blocked()

    const listing = await client.get('/reencrypts').qs({ from }).bearerToken(read)
    const [listed] = listing.body().data
    assert.equal(listed.status, 'running')
    assert.isFalse(listed.stalled, 'its process is alive and holds the lock')
    assert.equal(listed.progress.done, 700, 'fourteen batches before the held row')
    assert.equal(listed.progress.total, 1500)
    assert.isString(listed.heartbeatAt)

    const cancelled = await client.post(`/reencrypts/${listed.id}/cancel`).bearerToken(admin)
    cancelled.assertStatus(202)
    assert.equal(cancelled.body().id, listed.id)
    assert.isTrue(cancelled.body().cancelRequested)

    // Let the parked batch go: it commits, reads the request, and the run stops there.
    await hold.release()
    const stopped = await running
    assert.equal(stopped.status, 'cancelled')
    assert.equal(stopped.cancelledBy, 'operator', 'a cancel through the API is an operator stop')
    assert.equal(stopped.reencrypted, 750, 'stopped after the parked batch')
    assert.equal(await rowsUnder(from), 750)
    assert.deepEqual(await versionCounts(to), { 1: 750 })
    await advisoryLocksReleased()
    const shown = await client.get(`/reencrypts/${listed.id}`).bearerToken(read)
    assert.equal(shown.body().status, 'cancelled')
    assert.isFalse(shown.body().cancelRequested, 'the request is consumed by the stop')

    // Running the same re-encrypt again resumes that run and finishes it.
    const finished = await service.reencrypt(from, to, { niceRatio: 0 })
    assert.equal(finished.id, listed.id)
    assert.equal(finished.status, 'completed')
    assert.isNull(finished.cancelledBy)
    assert.equal(finished.reencrypted, 1500)
    assert.equal(await rowsUnder(from), 0)
    await assertAllDecrypt(assert, expected)
  }).timeout(120_000)

  test('a cancel of a finished run changes nothing', async ({ client, assert }) => {
    const from = kekName('re-done')
    const to = kekName('re-done-to')
    await createKek(from)
    await createKek(to)
    await seed(from, 20)
    const service = await app.container.make(ReencryptService)
    const done = await service.reencrypt(from, to, { niceRatio: 0 })
    const response = await client.post(`/reencrypts/${done.id}/cancel`).bearerToken(admin)
    response.assertStatus(202)
    assert.equal(response.body().status, 'completed')
    assert.isFalse(response.body().cancelRequested)
  })

  test('a running run whose process died shows stalled: true and its last heartbeat; rerunning resumes it', async ({
    client,
    assert,
  }) => {
    const from = kekName('re-stalled')
    const to = kekName('re-stalled-to')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 300)
    // What a killed process leaves behind: a `running` row, an old heartbeat, no lock holder.
    const store = new ReencryptStore()
    const orphan = await store.createRun({ fromKek: from, toKek: to, totalRows: 300, options: {} })
    await store.update(orphan.id, { heartbeat_at: new Date(Date.now() - 3_600_000) })

    const shown = await client.get(`/reencrypts/${orphan.id}`).bearerToken(read)
    shown.assertStatus(200)
    assert.equal(shown.body().status, 'running')
    assert.isTrue(shown.body().stalled)
    const silentFor = Date.now() - new Date(shown.body().heartbeatAt).getTime()
    assert.isAtLeast(silentFor, 3_600_000, 'the heartbeat shows how long it has been silent')
    const listed = await client.get('/reencrypts').qs({ from }).bearerToken(read)
    assert.isTrue(listed.body().data[0].stalled)

    // A live holder of the source KEK's re-encrypt lock (a process working on it) → not stalled.
    const lock = await new AdvisoryLock().tryAcquire(lockKeys.reencrypt(from))
    assert.isNotNull(lock)
    try {
      const held = await client.get(`/reencrypts/${orphan.id}`).bearerToken(read)
      assert.isFalse(held.body().stalled)
    } finally {
      await lock!.release()
    }

    const service = await app.container.make(ReencryptService)
    const finished = await service.reencrypt(from, to, { batchSize: 100, niceRatio: 0 })
    assert.equal(finished.id, orphan.id)
    assert.equal(finished.status, 'completed')
    const after = await client.get(`/reencrypts/${orphan.id}`).bearerToken(read)
    assert.isFalse(after.body().stalled)
    assert.isBelow(
      Date.now() - new Date(after.body().heartbeatAt).getTime(),
      silentFor,
      'every batch commit moved the heartbeat'
    )
    await assertAllDecrypt(assert, expected)
  }).timeout(60_000)
})
