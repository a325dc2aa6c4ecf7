/*
|--------------------------------------------------------------------------
| The HTTP server killed while an API-started run is going
|--------------------------------------------------------------------------
*/
import { test } from '@japa/runner'
import db from '@adonisjs/lucid/services/db'
import { createToken } from '#tests/helpers/auth'
import { startAppServer } from '#tests/helpers/app_server'
import {
  assertAllDecrypt,
  createKek,
  kekName,
  latestVersion,
  seed,
  versionCounts,
} from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'

test.group('reliability: the HTTP server restarted during an API-started run', () => {
  test('SIGKILL of the server mid-run: the run is shown stalled, POST /rotations resume finishes it, nothing lost', async ({
    assert,
  }) => {
    const kek = kekName('apirun')
    await createKek(kek)
    const expected = await seed(kek, 4000)
    const token = await createToken(['rotation:read', 'rotation:admin'])
    const headers = { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' }
    const committed = async () => {
      const row = await db.from('key_rotations').where('kek_name', kek).first()
      return Number(row?.rewrapped ?? 0)
    }

    let server = await startAppServer()
    try {
      const started = await fetch(`${server.base}/rotations`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ kek, batchSize: 100, sleepMs: 20, niceRatio: 0 }),
      })
      assert.equal(started.status, 202, await started.clone().text())
      const { id } = (await started.json()) as { id: string }
      await waitFor(async () => (await committed()) >= 500, { what: '500 rows committed' })
      server.child.kill('SIGKILL')
      await server.stop()
      const atKill = await committed()
      assert.isBelow(atKill, 4000, 'killed before the end')

      server = await startAppServer()
      const stalled = await waitFor(
        async () => {
          const response = await fetch(`${server.base}/rotations/${id}`, { headers })
          const view = (await response.json()) as { status: string; stalled: boolean }
          return view.stalled ? view : null
        },
        { what: 'the run shown stalled' }
      )
      assert.equal(stalled.status, 'running')
      const counts = await versionCounts(kek)
      assert.equal(await committed(), counts[2], 'counter = rows moved')

      const resumed = await fetch(`${server.base}/rotations`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ kek, resume: true, niceRatio: 0 }),
      })
      assert.equal(resumed.status, 202, await resumed.clone().text())
      const done = await waitFor(
        async () => {
          const response = await fetch(`${server.base}/rotations/${id}`, { headers })
          const view = (await response.json()) as { status: string; rewrapped: number }
          return view.status === 'completed' ? view : null
        },
        { timeoutMs: 120_000, what: 'the resumed run to complete' }
      )
      assert.equal(done.rewrapped, 4000, 'every row once')
    } finally {
      await server.stop()
    }
    assert.deepEqual(await versionCounts(kek), { 2: 4000 })
    assert.equal(await latestVersion(kek), 2, 'rotated once')
    await assertAllDecrypt(assert, expected)
  }).timeout(240_000)
})
