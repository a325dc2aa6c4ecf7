import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { test } from '@japa/runner'
import type { ApiClient, ApiResponse } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import type { Ability } from '#app/abilities'
import { KmsManager } from '#kms/kms_manager'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { createToken } from '#tests/helpers/auth'
import {
  createKek,
  kekName,
  kmsDriver,
  rotateInKms,
  seed,
  versionCounts,
  runningRotationRow,
} from '#tests/helpers/rotation'
import { freePort, vaultDriverFor } from '#tests/helpers/transit'
import { waitFor } from '#tests/helpers/wait'
import { clearCounts } from '#tests/helpers/counts'
import { advisoryLocksReleased, holdRows } from '#tests/helpers/pg_sessions'

/*
| Each test owns its KEK (unique name) and the rows seeded under it.
*/

const RUN_KEYS = [
  'id',
  'kekName',
  'status',
  'trigger',
  'requestedBy',
  'rotateKek',
  'baseVersion',
  'targetVersion',
  'totalRows',
  'rewrapped',
  'skipped',
  'failed',
  'pass',
  'cancelRequested',
  'cancelledBy',
  'stalled',
  'lastError',
  'distributed',
  'chunks',
  'options',
  'startedAt',
  'heartbeatAt',
  'finishedAt',
  'progress',
  'pacing',
].sort()

function assertError(assert: any, response: ApiResponse, status: number, code: string) {
  assert.equal(response.status(), status, response.text())
  const body = response.body()
  assert.isArray(body.errors, response.text())
  assert.equal(body.errors[0].code, code, response.text())
  assert.isString(body.errors[0].message)
}

/** Polls GET /rotations/:id until `done(run)`. */
async function pollRun(
  client: ApiClient,
  token: string,
  id: string,
  done: (run: any) => boolean,
  timeoutMs = 30_000
) {
  return waitFor(
    async () => {
      const response = await client.get(`/rotations/${id}`).bearerToken(token)
      response.assertStatus(200)
      return done(response.body()) ? response.body() : null
    },
    { timeoutMs, intervalMs: 50, what: `run ${id} to reach the awaited state` }
  )
}

test.group('rotations API / auth', (group) => {
  const routes: Array<{ method: 'get' | 'post'; path: string; ability: Ability }> = [
    { method: 'get', path: '/rotations/status', ability: 'rotation:read' },
    { method: 'get', path: '/rotations', ability: 'rotation:read' },
    { method: 'get', path: '/rotations/1', ability: 'rotation:read' },
    { method: 'post', path: '/rotations', ability: 'rotation:admin' },
    { method: 'post', path: '/rotations/1/cancel', ability: 'rotation:admin' },
  ]
  let tokens: Record<string, string>
  group.setup(async () => {
    tokens = {
      none: await createToken([]),
      entries: await createToken(['entries:read', 'entries:write']),
      read: await createToken(['rotation:read']),
      admin: await createToken(['rotation:admin']),
    }
  })

  for (const route of routes) {
    test(`${route.method.toUpperCase()} ${route.path}: 401 without a valid token`, async ({
      client,
      assert,
    }) => {
      assertError(assert, await client[route.method](route.path), 401, 'E_UNAUTHORIZED_ACCESS')
      const bogus = `rwp_MQ.${randomBytes(24).toString('base64url')}`
      const response = await client[route.method](route.path).bearerToken(bogus)
      assertError(assert, response, 401, 'E_UNAUTHORIZED_ACCESS')
      assert.notInclude(response.text(), bogus)
    })

    test(`${route.method.toUpperCase()} ${route.path}: 403 without "${route.ability}"`, async ({
      client,
      assert,
    }) => {
      const other = route.ability === 'rotation:read' ? 'admin' : 'read'
      for (const name of ['none', 'entries', other]) {
        const response = await client[route.method](route.path).bearerToken(tokens[name])
        assertError(assert, response, 403, 'E_FORBIDDEN')
        assert.include(response.body().errors[0].message, route.ability)
        assert.notInclude(response.text(), tokens[name])
      }
    })
  }
})

test.group('rotations API / status', (group) => {
  let read: string
  group.setup(async () => {
    read = await createToken(['rotation:read'])
  })

  test('GET /rotations/status: versions, ages, counts, due date, no run yet', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-status')
    await createKek(kek)
    await seed(kek, 30)
    await rotateInKms(kek)
    await seed(kek, 20, 30)
    const driver = await kmsDriver(kek)
    const info = (await driver.readKey(kek))!
    await clearCounts()

    const response = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    response.assertStatus(200)
    const body = response.body()
    assert.deepEqual(Object.keys(body).sort(), [
      'countsAsOf',
      'countsMaxAgeSeconds',
      'generatedAt',
      'governance',
      'keks',
    ])
    assert.isAtMost(Date.parse(body.countsAsOf), Date.parse(body.generatedAt) + 1000)
    assert.lengthOf(body.keks, 1)
    const status = body.keks[0]
    assert.equal(status.name, kek)
    assert.isTrue(status.exists)
    assert.equal(status.driver, 'local')
    assert.equal(status.latestVersion, 2)
    assert.equal(status.minDecryptionVersion, 1)
    assert.equal(status.rows, 50)
    assert.equal(status.staleRows, 30)
    assert.deepEqual(
      status.versions.map((v: any) => [v.version, v.state, v.rows]),
      [
        [1, 'active', 30],
        [2, 'active', 20],
      ]
    )
    for (const v of status.versions) {
      const created = info.versions.find((x) => x.version === v.version)!.createdAt
      assert.equal(v.createdAt, created.toISOString())
      assert.isAtLeast(v.ageSeconds, 0)
      assert.isBelow(v.ageSeconds, 600)
    }
    assert.isNumber(status.cryptoperiodDays)
    const latestCreated = info.versions.find((x) => x.version === 2)!.createdAt.getTime()
    assert.equal(
      Date.parse(status.nextRotationDueAt),
      latestCreated + status.cryptoperiodDays * 86_400_000
    )
    assert.isFalse(status.rotationDue)
    assert.isNull(status.running)
    assert.isNull(status.lastRun)
    assert.isNull(status.lastSuccessAt)

    // Unfiltered: every KEK, this one among them.
    const all = await client.get('/rotations/status').bearerToken(read)
    all.assertStatus(200)
    assert.include(
      all.body().keks.map((k: any) => k.name),
      kek
    )
  })

  test('GET /rotations/status: a KEK nobody knows → empty list; a bad name → 422', async ({
    client,
    assert,
  }) => {
    const unknown = await client
      .get('/rotations/status')
      .qs({ kek: kekName('fn-nobody') })
      .bearerToken(read)
    unknown.assertStatus(200)
    assert.deepEqual(unknown.body().keks, [])
    const bad = await client.get('/rotations/status').qs({ kek: '../etc' }).bearerToken(read)
    assertError(assert, bad, 422, 'E_VALIDATION_ERROR')
  })

  test('KMS down: still 200 with the row counts, kmsError per KEK', async ({ client, assert }) => {
    const kek = kekName('fn-status-down')
    await createKek(kek)
    await seed(kek, 7)
    await clearCounts()
    const { driver } = vaultDriverFor(
      { url: `http://127.0.0.1:${await freePort()}`, token: 'test-not-a-real-token' },
      { timeoutMs: 1_000, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }
    )
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    )
    try {
      const response = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
      response.assertStatus(200)
      const status = response.body().keks[0]
      assert.equal(status.name, kek)
      assert.isNull(status.exists)
      assert.include(status.kmsError, 'E_KMS_UNAVAILABLE')
      assert.equal(status.rows, 7)
      assert.deepEqual(
        status.versions.map((v: any) => [v.version, v.state, v.rows]),
        [[1, 'unknown', 7]]
      )
      assert.isNull(status.latestVersion)
      assert.isNull(status.nextRotationDueAt)
    } finally {
      app.container.restore(KmsManager)
    }
  })

  test('KMS hangs: status answers within its 5 s bound with kmsError E_TIMEOUT and the row counts', async ({
    client,
    assert,
    cleanup,
  }) => {
    const kek = kekName('fn-status-hang')
    await createKek(kek)
    await seed(kek, 7)
    await clearCounts()
    // A KMS that accepts connections and never answers (node-vault over real HTTP to it).
    const asked: Socket[] = []
    const hanging = createServer((socket) => void asked.push(socket))
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    cleanup(async () => {
      for (const socket of asked) socket.destroy()
      await new Promise((resolve) => hanging.close(resolve))
    })
    const { port } = hanging.address() as AddressInfo
    const { driver } = vaultDriverFor(
      { url: `http://127.0.0.1:${port}`, token: 'test-not-a-real-token' },
      // The driver would wait a minute: the status bound must be what answers.
      { timeoutMs: 60_000, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }
    )
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    )
    try {
      const started = Date.now()
      const response = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
      const elapsed = Date.now() - started
      response.assertStatus(200)
      assert.isAbove(asked.length, 0, 'the KMS was asked')
      assert.isAtLeast(elapsed, 4_900, 'it waited for the KMS up to the bound')
      assert.isBelow(elapsed, 20_000, 'and answered soon after it, not after the driver timeout')
      const status = response.body().keks[0]
      assert.equal(status.name, kek)
      assert.isNull(status.exists)
      assert.match(status.kmsError, /^E_TIMEOUT: /)
      assert.equal(status.rows, 7)
      assert.deepEqual(
        status.versions.map((v: any) => [v.version, v.state, v.rows]),
        [[1, 'unknown', 7]]
      )
      assert.isNull(status.latestVersion)
    } finally {
      app.container.restore(KmsManager)
    }
  }).timeout(60_000)

  test('counts are cached a few seconds and say when they were taken', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-cache')
    await createKek(kek)
    await seed(kek, 5)
    await clearCounts()
    const first = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    await seed(kek, 5, 5)
    const second = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    assert.equal(second.body().countsAsOf, first.body().countsAsOf)
    assert.equal(second.body().keks[0].rows, 5, 'served from the cache')
    await clearCounts()
    const third = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    assert.equal(third.body().keks[0].rows, 10)
  })
})

test.group('rotations API / start, list, show, cancel', (group) => {
  let read: string
  let admin: string
  const adminName = `fn-rot-admin-${randomBytes(3).toString('hex')}`
  group.setup(async () => {
    read = await createToken(['rotation:read'])
    admin = await createToken(['rotation:admin'], { name: adminName })
  })

  test('POST /rotations → 202 with the run; it completes; list, show and status report it', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-start')
    await createKek(kek)
    await seed(kek, 120)

    const started = await client.post('/rotations').bearerToken(admin).json({ kek, batchSize: 25 })
    started.assertStatus(202)
    const run = started.body()
    assert.deepEqual(Object.keys(run).sort(), RUN_KEYS)
    assert.match(run.id, /^[1-9][0-9]*$/)
    assert.equal(run.kekName, kek)
    assert.equal(run.trigger, 'api')
    assert.equal(run.requestedBy, adminName)
    assert.isTrue(run.rotateKek)
    assert.equal(run.baseVersion, 1)
    assert.equal(run.options.batchSize, 25)
    // 202 as soon as the run row exists: before Step A, nothing counted yet.
    assert.equal(run.status, 'running')
    assert.equal(run.totalRows, 0)
    assert.isNull(run.targetVersion)
    assert.equal(run.progress.percent, 0)
    assert.isNull(run.progress.etaSeconds)

    const done = await pollRun(client, read, run.id, (r) => r.status !== 'running')
    assert.equal(done.status, 'completed', JSON.stringify(done))
    assert.equal(done.targetVersion, 2)
    assert.equal(done.rewrapped, 120)
    assert.equal(done.failed, 0)
    assert.isString(done.finishedAt)
    assert.deepEqual(done.progress, {
      done: 120,
      total: 120,
      percent: 100,
      rowsPerSecond: done.progress.rowsPerSecond,
      etaSeconds: 0,
    })
    assert.deepEqual(await versionCounts(kek), { 2: 120 })

    const list = await client.get('/rotations').qs({ kek }).bearerToken(read)
    list.assertStatus(200)
    assert.deepEqual(
      list.body().data.map((r: any) => r.id),
      [run.id]
    )
    assert.deepEqual(Object.keys(list.body().data[0]).sort(), RUN_KEYS)

    await clearCounts()
    const status = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    const kekStatus = status.body().keks[0]
    assert.isNull(kekStatus.running)
    assert.equal(kekStatus.lastRun.id, run.id)
    assert.equal(kekStatus.lastRun.status, 'completed')
    assert.equal(kekStatus.lastSuccessAt, done.finishedAt)
    assert.equal(kekStatus.latestVersion, 2)
    assert.equal(kekStatus.staleRows, 0)
    assert.deepEqual(
      kekStatus.versions.map((v: any) => [v.version, v.rows]),
      [
        [1, 0],
        [2, 120],
      ]
    )
  })

  test('POST /rotations { distributed: true } → 202; Step A once, chunks on the queue; with no worker the run shows its pending chunks and stalled; cancel ends it', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-dist')
    await createKek(kek)
    await seed(kek, 60)
    const started = await client
      .post('/rotations')
      .bearerToken(admin)
      .json({ kek, distributed: true, batchSize: 25 })
    started.assertStatus(202)
    assert.deepEqual(Object.keys(started.body()).sort(), RUN_KEYS)
    assert.isTrue(started.body().distributed)
    const id = started.body().id
    // No worker runs in this process: the chunks wait on the queue (Step A is done first).
    const shown = await waitFor(
      async () => {
        const response = await client.get(`/rotations/${id}`).bearerToken(read)
        const body = response.body()
        // Stalled once the starting process has enqueued the chunks and let go of the lock.
        return body.targetVersion === 2 && body.chunks?.pending >= 1 && body.stalled ? body : null
      },
      { what: 'the run cut into chunks, its lock released' }
    )
    assert.equal(shown.status, 'running')
    assert.deepEqual(
      { running: shown.chunks.running, done: shown.chunks.done, stalled: shown.chunks.stalled },
      { running: 0, done: 0, stalled: 0 }
    )
    assert.deepEqual(shown.chunks.workers, [])
    const metrics = await client.get('/metrics').bearerToken(read)
    assert.include(
      metrics.text(),
      `rewrap_rotation_chunks{kek="${kek}",status="pending"} ${shown.chunks.pending}`
    )
    assert.include(metrics.text(), `rewrap_rotation_chunks_stalled{kek="${kek}"} 0`)
    // Cancel with no chunk held: the run ends at once, resumable.
    const cancelled = await client.post(`/rotations/${id}/cancel`).bearerToken(admin)
    cancelled.assertStatus(202)
    assert.equal(cancelled.body().status, 'cancelled')
    assert.equal(cancelled.body().cancelledBy, 'operator')
  })

  test('GET /rotations: newest first, ?limit, validation', async ({ client, assert }) => {
    const kek = kekName('fn-list')
    await createKek(kek)
    await seed(kek, 10)
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const started = await client.post('/rotations').bearerToken(admin).json({ kek })
      started.assertStatus(202)
      ids.push(started.body().id)
      await pollRun(client, read, started.body().id, (r) => r.status !== 'running')
      // Its process lets go of the KEK's lock just after the row says so.
      await advisoryLocksReleased()
    }
    const all = await client.get('/rotations').qs({ kek }).bearerToken(read)
    assert.deepEqual(
      all.body().data.map((r: any) => r.id),
      [...ids].reverse()
    )
    const one = await client.get('/rotations').qs({ kek, limit: 1 }).bearerToken(read)
    assert.deepEqual(
      one.body().data.map((r: any) => r.id),
      [ids[2]]
    )
    const unfiltered = await client.get('/rotations').bearerToken(read)
    unfiltered.assertStatus(200)
    assert.isAtLeast(unfiltered.body().data.length, 3)
    for (const bad of [{ limit: 0 }, { limit: 501 }, { limit: 'x' }, { kek: 'a b' }]) {
      const response = await client.get('/rotations').qs(bad).bearerToken(read)
      assertError(assert, response, 422, 'E_VALIDATION_ERROR')
    }
  })

  test('GET /rotations/:id: unknown → 404 E_ROTATION_NOT_FOUND', async ({ client, assert }) => {
    assertError(
      assert,
      await client.get('/rotations/987654321012').bearerToken(read),
      404,
      'E_ROTATION_NOT_FOUND'
    )
    assertError(
      assert,
      await client.post('/rotations/987654321012/cancel').bearerToken(admin),
      404,
      'E_ROTATION_NOT_FOUND'
    )
  })

  test('POST /rotations: unknown KEK → 404, bad input → 422', async ({ client, assert }) => {
    assertError(
      assert,
      await client
        .post('/rotations')
        .bearerToken(admin)
        .json({ kek: kekName('fn-missing') }),
      404,
      'E_KEK_NOT_FOUND'
    )
    const kek = kekName('fn-bad')
    await createKek(kek)
    for (const body of [
      {},
      { kek: '' },
      { kek, batchSize: 0 },
      { kek, batchSize: 1.5 },
      { kek, sleepMs: -1 },
      { kek, maxRate: -5 },
      { kek, rotate: 'yes' },
      { kek, resume: 'no' },
      { kek, targetVersion: 0 },
    ]) {
      const response = await client.post('/rotations').bearerToken(admin).json(body)
      assertError(assert, response, 422, 'E_VALIDATION_ERROR')
    }
    assertError(
      assert,
      await client.post('/rotations').bearerToken(admin).json({ kek, targetVersion: 5 }),
      422,
      'E_ROTATION_INVALID'
    )
    assertError(
      assert,
      await client.post('/rotations').bearerToken(admin).json({ kek, resume: true }),
      409,
      'E_NO_ROTATION_TO_RESUME'
    )
  })

  test('cancel a running run → 202; it stops resumable; 409s; resume completes it', async ({
    client,
    assert,
    cleanup,
  }) => {
    const kek = kekName('fn-cancel')
    await createKek(kek)
    const seeded = await seed(kek, 1500)
    const ids = [...seeded.keys()]

    // The run parks at its 15th batch (rows 700-749): one of them is held.
    const hold = await holdRows([ids[720]])
    cleanup(() => hold.release())
    const started = await client.post('/rotations').bearerToken(admin).json({ kek, batchSize: 50 })
    started.assertStatus(202)
    const id = started.body().id
    await hold.blocked()

    // While it runs: another start is refused, the status shows its progress.
    assertError(
      assert,
      await client.post('/rotations').bearerToken(admin).json({ kek }),
      409,
      'E_ROTATION_IN_PROGRESS'
    )
    const status = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    const running = status.body().keks[0].running
    assert.equal(running.id, id)
    assert.equal(running.status, 'running')
    assert.isFalse(running.stalled, 'its process is alive and holds the lock')
    assert.equal(running.progress.total, 1500)
    assert.equal(running.progress.done, 700, 'fourteen batches before the held row')

    // /metrics shows the running run too.
    const metrics = await client.get('/metrics').bearerToken(read)
    metrics.assertStatus(200)
    const gauge = (name: string) => {
      const line = metrics
        .text()
        .split('\n')
        .find((l) => l.startsWith(`${name}{kek="${kek}"} `))
      return line === undefined ? undefined : Number(line.split(' ')[1])
    }
    assert.equal(gauge('rewrap_rotation_running'), 1)
    assert.equal(gauge('rewrap_rotation_stalled'), 0)
    assert.equal(gauge('rewrap_rotation_rows_planned'), 1500)
    assert.equal(gauge('rewrap_rotation_rows_done'), 700)
    assert.isAbove(gauge('rewrap_rotation_rows_per_second')!, 0)

    const cancelled = await client.post(`/rotations/${id}/cancel`).bearerToken(admin)
    cancelled.assertStatus(202)
    assert.deepEqual(Object.keys(cancelled.body()).sort(), RUN_KEYS)
    assert.equal(cancelled.body().id, id)
    assert.isTrue(cancelled.body().cancelRequested)

    // Let the parked batch go: it commits, sees the request, and the run stops there.
    await hold.release()
    const stopped = await pollRun(client, read, id, (r) => r.status !== 'running')
    assert.equal(stopped.status, 'cancelled')
    assert.equal(stopped.cancelledBy, 'operator', 'a cancel through the API is an operator stop')
    assert.equal(stopped.progress.done, 750, 'stopped after the parked batch')
    assert.deepEqual(await versionCounts(kek), { 1: 750, 2: 750 })
    await advisoryLocksReleased()

    assertError(
      assert,
      await client.post('/rotations').bearerToken(admin).json({ kek }),
      409,
      'E_ROTATION_UNFINISHED'
    )

    const resumed = await client
      .post('/rotations')
      .bearerToken(admin)
      .json({ kek, resume: true, batchSize: 500 })
    resumed.assertStatus(202)
    assert.equal(resumed.body().id, id)
    const finished = await pollRun(client, read, id, (r) => r.status !== 'running')
    assert.equal(finished.status, 'completed')
    assert.isNull(finished.cancelledBy)
    assert.equal(finished.rewrapped, 1500)
    assert.deepEqual(await versionCounts(kek), { 2: 1500 })
  }).timeout(60_000)

  test('a running run whose process died shows stalled: true until it is resumed', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-stalled')
    await createKek(kek)
    await seed(kek, 300)
    // What a killed process leaves behind: a `running` row and no lock holder.
    const orphan = await runningRotationRow(kek)
    const shown = await client.get(`/rotations/${orphan.id}`).bearerToken(read)
    shown.assertStatus(200)
    assert.isTrue(shown.body().stalled)
    const status = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    assert.isTrue(status.body().keks[0].running.stalled)
    const listed = await client.get('/rotations').qs({ kek }).bearerToken(read)
    assert.isTrue(listed.body().data[0].stalled)
    const metrics = await client.get('/metrics').bearerToken(read)
    assert.include(metrics.text().split('\n'), `rewrap_rotation_stalled{kek="${kek}"} 1`)

    // A live holder of the KEK's lock (a process working on it) → not stalled.
    const lock = await new AdvisoryLock().tryAcquire(lockKeys.rotation(kek))
    assert.isNotNull(lock)
    try {
      const held = await client.get(`/rotations/${orphan.id}`).bearerToken(read)
      assert.isFalse(held.body().stalled)
    } finally {
      await lock!.release()
    }

    const resumed = await client.post('/rotations').bearerToken(admin).json({ kek, resume: true })
    resumed.assertStatus(202)
    assert.equal(resumed.body().id, orphan.id)
    const finished = await pollRun(client, read, orphan.id, (r) => r.status !== 'running')
    assert.equal(finished.status, 'completed')
    assert.isFalse(finished.stalled)
    assert.deepEqual(await versionCounts(kek), { 2: 300 })
  }).timeout(60_000)
})
