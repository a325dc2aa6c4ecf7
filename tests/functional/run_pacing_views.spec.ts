import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import type { ApiClient } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { DatabasePacingRows, runPacingSink } from '#services/run_pacing_rows'
import { ReencryptService } from '#services/reencrypt_service'
import { ReencryptStore } from '#services/reencrypt_store'
import { RotationStore } from '#services/rotation_store'
import { createToken } from '#tests/helpers/auth'
import {
  createKek,
  kekName,
  seed,
  versionCounts,
  runningRotationRow,
} from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'

/*
| Why a running run goes at its speed, seen from outside: its row of
| `run_pacing` (written here by the pacer's own sink, as a paced run's
| process writes it after each judgement) in the run views of
| /rotations/status, /rotations, /rotations/:id, /reencrypts,
| /reencrypts/:id and in /metrics; nothing once the run has finished.
*/

const PACING_KEYS = ['baselineP99Ms', 'budgetRatio', 'duty', 'foregroundP99Ms', 'judgedAt', 'mode']

/** What a paced run's process leaves after a judgement. */
async function judged(
  kind: 'rotation' | 're-encrypt',
  runId: string,
  pacing: { duty: number; p99Ms: number | null; baselineP99Ms: number | null; ratio: number }
) {
  await runPacingSink(
    kind,
    runId,
    pacing.ratio
  )({
    duty: pacing.duty,
    p99Ms: pacing.p99Ms,
    baselineP99Ms: pacing.baselineP99Ms,
    baselineAgeMs: 0,
    judgement: 'slower',
  })
}

async function pacingRows(kind: string, runId: string): Promise<number> {
  const { rows } = await db.rawQuery(
    'SELECT count(*)::int AS n FROM run_pacing WHERE run_kind = ? AND run_id = ?',
    [kind, runId]
  )
  return rows[0].n
}

/** The /metrics lines of one family whose labels include every one of `labels`. */
async function metricLines(
  client: ApiClient,
  token: string,
  name: string,
  labels: Record<string, string>
): Promise<string[]> {
  const response = await client.get('/metrics').bearerToken(token)
  response.assertStatus(200)
  return response
    .text()
    .split('\n')
    .filter(
      (line) =>
        line.startsWith(`${name}{`) &&
        Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))
    )
}

/** The value of the one sample `name{labels…}`, or null when there is none. */
async function metric(
  client: ApiClient,
  token: string,
  name: string,
  labels: Record<string, string>
): Promise<number | null> {
  const lines = await metricLines(client, token, name, labels)
  if (lines.length > 1) throw new Error(`several ${name} samples: ${lines.join(' | ')}`)
  return lines[0] ? Number(lines[0].slice(lines[0].lastIndexOf(' ') + 1)) : null
}

function assertPacing(assert: any, pacing: any, expected: Record<string, unknown>) {
  assert.isNotNull(pacing, 'a pacing object')
  assert.deepEqual(Object.keys(pacing).sort(), PACING_KEYS)
  const { judgedAt, ...rest } = pacing
  assert.deepEqual(rest, { mode: 'latency-budget', ...expected })
  assert.match(judgedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.isBelow(Math.abs(Date.now() - Date.parse(judgedAt)), 60_000)
}

test.group('run pacing in the run views and /metrics', (group) => {
  let read: string
  let admin: string
  group.setup(async () => {
    read = await createToken(['rotation:read'])
    admin = await createToken(['rotation:admin'], {
      name: `fn-pacing-admin-${randomBytes(3).toString('hex')}`,
    })
  })

  test('a running rotation shows its pacing in /rotations/status, /rotations, /rotations/:id and /metrics; finished: pacing null', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-pacing-rot')
    await createKek(kek)
    await seed(kek, 200)
    const run = await runningRotationRow(kek)

    // Running, not judged yet (full speed, or the first window not over): null.
    const unjudged = await client.get(`/rotations/${run.id}`).bearerToken(read)
    unjudged.assertStatus(200)
    assert.isNull(unjudged.body().pacing)
    assert.isNull(await metric(client, read, 'rewrap_pacing_duty', { kek }))
    // A distributed run's judge has claimed the row but not judged: still nothing to show.
    assert.isNotNull(await new DatabasePacingRows('rotation', run.id).claim('judge-1', 5_000, 0.2))
    const claimed = await client.get(`/rotations/${run.id}`).bearerToken(read)
    assert.isNull(claimed.body().pacing, 'a claimed, unjudged row is not a judgement')
    assert.isNull(await metric(client, read, 'rewrap_pacing_duty', { kek }))

    await judged('rotation', run.id, { duty: 0.375, p99Ms: 6.5, baselineP99Ms: 4.25, ratio: 1.2 })
    const expected = { duty: 0.375, foregroundP99Ms: 6.5, baselineP99Ms: 4.25, budgetRatio: 1.2 }

    const status = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    status.assertStatus(200)
    assertPacing(assert, status.body().keks[0].running.pacing, expected)
    const shown = await client.get(`/rotations/${run.id}`).bearerToken(read)
    assertPacing(assert, shown.body().pacing, expected)
    assert.equal(Object.keys(shown.body()).at(-1), 'pacing', 'after progress, the last key')
    const listed = await client.get('/rotations').qs({ kek }).bearerToken(read)
    assertPacing(assert, listed.body().data[0].pacing, expected)
    assert.equal(listed.body().data[0].pacing.judgedAt, shown.body().pacing.judgedAt)

    assert.equal(await metric(client, read, 'rewrap_pacing_duty', { kek }), 0.375)
    assert.closeTo(
      (await metric(client, read, 'rewrap_pacing_foreground_p99_seconds', { kek }))!,
      0.0065,
      1e-12
    )
    assert.closeTo(
      (await metric(client, read, 'rewrap_pacing_baseline_p99_seconds', { kek }))!,
      0.00425,
      1e-12
    )
    assert.isNull(await metric(client, read, 'rewrap_reencrypt_pacing_duty', { from: kek }))

    // No foreground traffic in the last window: a null p99, no p99 sample.
    await judged('rotation', run.id, { duty: 0.5, p99Ms: null, baselineP99Ms: 4.25, ratio: 1.2 })
    const quiet = await client.get(`/rotations/${run.id}`).bearerToken(read)
    assertPacing(assert, quiet.body().pacing, { ...expected, duty: 0.5, foregroundP99Ms: null })
    assert.equal(await metric(client, read, 'rewrap_pacing_duty', { kek }), 0.5)
    assert.isNull(await metric(client, read, 'rewrap_pacing_foreground_p99_seconds', { kek }))

    // Resumed, it completes: its pacing row is still there, but a finished run has no pacing.
    const resumed = await client.post('/rotations').bearerToken(admin).json({ kek, resume: true })
    resumed.assertStatus(202)
    const finished = await waitFor(
      async () => {
        const response = await client.get(`/rotations/${run.id}`).bearerToken(read)
        return response.body().status === 'running' ? null : response.body()
      },
      { what: 'the resumed rotation to finish' }
    )
    assert.equal(finished.status, 'completed')
    assert.deepEqual(await versionCounts(kek), { 2: 200 })
    assert.isNull(finished.pacing)
    assert.equal(await pacingRows('rotation', run.id), 1, 'the row stays; the view hides it')
    const after = await client.get('/rotations/status').qs({ kek }).bearerToken(read)
    assert.isNull(after.body().keks[0].running)
    assert.equal(after.body().keks[0].lastRun.id, run.id)
    assert.isNull(after.body().keks[0].lastRun.pacing)
    const listedAfter = await client.get('/rotations').qs({ kek }).bearerToken(read)
    assert.isNull(listedAfter.body().data[0].pacing)
    assert.isNull(await metric(client, read, 'rewrap_pacing_duty', { kek }))
  }).timeout(60_000)

  test('a running re-encrypt shows its pacing in /reencrypts, /reencrypts/:id and its own /metrics families, apart from a rotation of the same KEK; finished: pacing null', async ({
    client,
    assert,
  }) => {
    const from = kekName('fn-pacing-re')
    const to = kekName('fn-pacing-re-to')
    await createKek(from)
    await createKek(to)
    await seed(from, 150)
    const reencryptRun = await new ReencryptStore().createRun({
      fromKek: from,
      toKek: to,
      totalRows: 150,
      options: {},
    })
    // A rotation of the source KEK paced at the same time: its own duty, its own series.
    const rotationRun = await runningRotationRow(from)
    await judged('re-encrypt', reencryptRun.id, {
      duty: 0.625,
      p99Ms: 12,
      baselineP99Ms: 8,
      ratio: 1.5,
    })
    await judged('rotation', rotationRun.id, {
      duty: 0.125,
      p99Ms: 3,
      baselineP99Ms: 2,
      ratio: 1.2,
    })

    const expected = { duty: 0.625, foregroundP99Ms: 12, baselineP99Ms: 8, budgetRatio: 1.5 }
    const shown = await client.get(`/reencrypts/${reencryptRun.id}`).bearerToken(read)
    shown.assertStatus(200)
    assertPacing(assert, shown.body().pacing, expected)
    const listed = await client.get('/reencrypts').qs({ from }).bearerToken(read)
    assertPacing(assert, listed.body().data[0].pacing, expected)
    const rotation = await client.get(`/rotations/${rotationRun.id}`).bearerToken(read)
    assertPacing(assert, rotation.body().pacing, {
      duty: 0.125,
      foregroundP99Ms: 3,
      baselineP99Ms: 2,
      budgetRatio: 1.2,
    })

    const labels = { from, to }
    assert.equal(await metric(client, read, 'rewrap_reencrypt_pacing_duty', labels), 0.625)
    assert.closeTo(
      (await metric(client, read, 'rewrap_reencrypt_pacing_foreground_p99_seconds', labels))!,
      0.012,
      1e-12
    )
    assert.closeTo(
      (await metric(client, read, 'rewrap_reencrypt_pacing_baseline_p99_seconds', labels))!,
      0.008,
      1e-12
    )
    assert.equal(await metric(client, read, 'rewrap_pacing_duty', { kek: from }), 0.125)
    assert.deepEqual(
      await metricLines(client, read, 'rewrap_reencrypt_pacing_duty', { from }),
      [`rewrap_reencrypt_pacing_duty{from="${from}",to="${to}"} 0.625`],
      'labelled by its KEKs, as its logs and `reencrypt --from --to`'
    )

    // The exposition with both kinds' pacing series stays valid for Prometheus.
    const scrape = await client.get('/metrics').bearerToken(read)
    const lint = spawnSync('promtool', ['check', 'metrics'], {
      input: scrape.text(),
      encoding: 'utf8',
    })
    if (!lint.error)
      assert.equal(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`)

    // The rotation gone (its process died and nobody resumes it): the re-encrypt's series stay.
    await new RotationStore().update(rotationRun.id, {
      status: 'failed',
      finished_at: new Date(),
      last_error: 'test',
    })
    assert.isNull(await metric(client, read, 'rewrap_pacing_duty', { kek: from }))
    assert.equal(await metric(client, read, 'rewrap_reencrypt_pacing_duty', labels), 0.625)

    // Running the same re-encrypt again resumes and finishes it: no pacing any more.
    const service = await app.container.make(ReencryptService)
    const finished = await service.reencrypt(from, to, { niceRatio: 0 })
    assert.equal(finished.id, reencryptRun.id)
    assert.equal(finished.status, 'completed')
    assert.equal(await pacingRows('re-encrypt', reencryptRun.id), 1)
    const after = await client.get(`/reencrypts/${reencryptRun.id}`).bearerToken(read)
    assert.equal(after.body().status, 'completed')
    assert.isNull(after.body().pacing)
    const listedAfter = await client.get('/reencrypts').qs({ from }).bearerToken(read)
    assert.isNull(listedAfter.body().data[0].pacing)
    assert.isNull(await metric(client, read, 'rewrap_reencrypt_pacing_duty', labels))
    assert.deepEqual(await versionCounts(to), { 1: 150 })
  }).timeout(60_000)

  test('the run views and /metrics carry no token and no key material', async ({
    client,
    assert,
  }) => {
    const kek = kekName('fn-pacing-secret')
    await createKek(kek)
    await seed(kek, 5)
    const run = await runningRotationRow(kek)
    await judged('rotation', run.id, { duty: 0.25, p99Ms: 5, baselineP99Ms: 4, ratio: 1.2 })
    for (const path of ['/rotations/status', `/rotations/${run.id}`, '/reencrypts', '/metrics']) {
      const response = await client.get(path).bearerToken(read)
      response.assertStatus(200)
      assert.notInclude(response.text(), read, path)
      assert.notInclude(response.text(), admin, path)
      assert.notMatch(response.text(), /vault:v[0-9]+:/, path)
    }
    await new RotationStore().update(run.id, { status: 'failed', finished_at: new Date() })
  })
})
