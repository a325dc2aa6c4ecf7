/*
|--------------------------------------------------------------------------
| GET /rotations/status: a run held to the KMS's requests/s budget
|--------------------------------------------------------------------------
|
| The aws-kms driver (real SDK, over HTTP to the in-process stand-in) with
| a ceiling of 5 requests/s = 5 rows/s (one ReEncrypt per row). A running
| run on it shows `quota-bound: ETA …`; one whose own max rate is lower
| than the ceiling is not quota-bound; a local KEK has no ceiling.
|
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { KmsManager } from '#kms/kms_manager'
import { RotationStore } from '#services/rotation_store'
import { awsDriverFor, startAwsKmsServer } from '#tests/helpers/aws_kms'
import { createToken } from '#tests/helpers/auth'
import { clearCounts } from '#tests/helpers/counts'
import { createKek, kekName, seed } from '#tests/helpers/rotation'

/** A `running` run row of `kek` with 600 rows, 100 done in 50 s (2 rows/s measured). */
async function runningRun(kek: string, options: Record<string, unknown>) {
  const store = new RotationStore()
  const run = await store.createRun({
    kekName: kek,
    baseVersion: 1,
    targetVersion: 2,
    rotateKek: true,
    options,
    trigger: 'cli',
    requestedBy: 'test',
  })
  await db.rawQuery(
    `UPDATE key_rotations SET total_rows = 600, rewrapped = 100,
            started_at = now() - interval '50 seconds', heartbeat_at = now()
      WHERE id = ?`,
    [run.id]
  )
  return run
}

test.group('rotations API / quota-bound status', (group) => {
  let read: string
  group.setup(async () => {
    read = await createToken(['rotation:read'])
  })

  test('a run on a KMS whose requests/s ceiling binds shows "quota-bound: ETA …"; its own max rate below the ceiling does not', async ({
    client,
    assert,
    cleanup,
  }) => {
    const stand = await startAwsKmsServer()
    cleanup(() => stand.close())
    const { driver } = awsDriverFor(stand, { requestsPerSecond: 5 })
    cleanup(() => driver.close())
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'aws-kms', drivers: { 'aws-kms': () => driver } })
    )
    cleanup(() => app.container.restore(KmsManager))

    const kek = kekName('fn-quota')
    await createKek(kek)
    await seed(kek, 3)
    await clearCounts()

    const idle = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    idle.assertStatus(200)
    assert.deepEqual(idle.body().keks[0].quota, {
      rowsPerSecond: 5,
      bound: false,
      etaSeconds: null,
      summary: null,
    })

    // Measured 2 rows/s (below the 5 rows/s ceiling): 500 rows left at 2 rows/s.
    const bound = await runningRun(kek, {})
    const response = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    response.assertStatus(200)
    const status = response.body().keks[0]
    assert.equal(status.running.id, bound.id)
    assert.deepEqual(status.quota, {
      rowsPerSecond: 5,
      bound: true,
      etaSeconds: 250,
      summary: "quota-bound: ETA 4m at the KMS's 5 rows/s",
    })
    await db.rawQuery(`UPDATE key_rotations SET status = 'cancelled' WHERE id = ?`, [bound.id])

    // Its own --max-rate 3 is below the ceiling: the run, not the quota, sets the pace.
    await runningRun(kek, { maxRate: 3 })
    const own = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    assert.deepEqual(own.body().keks[0].quota, {
      rowsPerSecond: 5,
      bound: false,
      etaSeconds: null,
      summary: null,
    })
  }).timeout(60_000)

  test('a local KEK has no ceiling', async ({ client, assert }) => {
    const kek = kekName('fn-quota-local')
    await createKek(kek)
    await seed(kek, 2)
    await clearCounts()
    const response = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    response.assertStatus(200)
    assert.deepEqual(response.body().keks[0].quota, {
      rowsPerSecond: null,
      bound: false,
      etaSeconds: null,
      summary: null,
    })
  })
})
