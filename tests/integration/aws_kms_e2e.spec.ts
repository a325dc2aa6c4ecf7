/*
|--------------------------------------------------------------------------
| End to end on the aws-kms driver
|--------------------------------------------------------------------------
|
| Rewrap's commands and services, unchanged, on a KEK in AWS KMS (the
| `kms:serve --api aws-kms` stand-in through @aws-sdk/client-kms over
| HTTP): preflight, rotate:kek, rotation:verify, kek:retire / unretire /
| trim, reencrypt — and runs interrupted and resumed, one of them a
| `rotate:kek` child process killed with SIGKILL.
|
*/
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { TAG_KEK } from '#kms/drivers/aws_kms_layout'
import type { AwsKmsDriver } from '#kms/drivers/aws_kms'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { KeyRotationService } from '#services/key_rotation_service'
import { ReencryptService } from '#services/reencrypt_service'
import { EntryService } from '#services/entry_service'
import { spawnAce } from '#tests/helpers/ace_child'
import { awsDriverFor, startAwsKmsServer, type AwsKmsFixture } from '#tests/helpers/aws_kms'
import { assertAllDecrypt, kekName, seed, versionCounts } from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'
import { runAce } from '#tests/helpers/ace'
import { ShiftedClock } from '#tests/helpers/clock'

const HOUR = 3_600_000
const DAY = 24 * HOUR

const clock = new ShiftedClock()
/** The shared in-process Ace runner (exit code, lines, the JSON line). */
const ace = runAce

async function exitOf(name: string, argv: string[]) {
  const out = await ace(name, argv)
  return out.exitCode
}

test.group('end to end on the aws-kms driver', (group) => {
  let fixture: AwsKmsFixture
  let driver: AwsKmsDriver

  group.setup(async () => {
    fixture = await startAwsKmsServer()
    return () => fixture.close()
  })
  group.each.setup(() => {
    clock.offsetMs = 0
    driver = awsDriverFor(fixture, { pendingWindowInDays: 7, concurrency: 16 }).driver
    app.container.swap(Clock, () => clock)
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'aws-kms', drivers: { 'aws-kms': () => driver } })
    )
    return async () => {
      app.container.restoreAll()
      await driver.close()
    }
  })

  const keyState = (kek: string, version: number) =>
    [...fixture.server.model.keys.values()].find(
      (k) => k.tags.get(TAG_KEK) === kek && k.tags.get('rewrap:version') === String(version)
    )?.state

  test('preflight, rotate:kek, verify, retire, unretire, retire, trim', async ({ assert }) => {
    const kek = kekName('awslife')
    await driver.createKey(kek)
    const expected = await seed(kek, 150)
    const old = await db.from('vault_entries').where('kek_name', kek).orderBy('id').first()
    assert.match(old.wrapped_dek, /^aws:v1:/)
    assert.deepEqual(await versionCounts(kek), { 1: 150 })

    const pre = await ace('rotation:preflight', [kek, '--json'])
    assert.equal(pre.exitCode, 0, JSON.stringify(pre.json))
    assert.equal(pre.json.plan.staleRows, 150)

    const mark = fixture.server.requestLog.length
    const rotated = await ace('rotate:kek', [kek, '--batch-size', '40', '--json'])
    assert.equal(rotated.exitCode, 0, JSON.stringify(rotated.json))
    assert.deepEqual(await versionCounts(kek), { 2: 150 })
    const ops = new Set(fixture.server.requestLog.slice(mark).map((e) => e.operation))
    assert.isFalse(ops.has('Decrypt'), 'the rotation never unwraps a DEK')
    assert.isTrue(ops.has('ReEncrypt'))

    const verified = await ace('rotation:verify', [kek, '--sample', '30', '--json'])
    assert.equal(verified.exitCode, 0, JSON.stringify(verified.json))
    const full = await ace('rotation:verify', [kek, '--full', '--json'])
    assert.equal(full.exitCode, 0, JSON.stringify(full.json))

    clock.offsetMs = 25 * HOUR
    assert.equal(await exitOf('kek:retire', [kek, '--json']), 0)
    assert.equal(keyState(kek, 1), 'Disabled')
    const disallowed = await driver.unwrap(kek, [old.wrapped_dek]).catch((e) => e)
    assert.equal(disallowed.code, 'E_KEY_VERSION_DISALLOWED')
    await assertAllDecrypt(assert, expected)

    assert.equal(await exitOf('kek:unretire', [kek, '--json']), 0)
    assert.equal(keyState(kek, 1), 'Enabled')
    const [dek] = await driver.unwrap(kek, [old.wrapped_dek])
    assert.lengthOf(dek, 32)

    assert.equal(await exitOf('kek:retire', [kek, '--json']), 0)
    const early = await ace('kek:trim', [kek, '--json'])
    assert.equal(early.exitCode, 1)
    assert.match(early.json.error, /^E_TRIM_REFUSED/)

    clock.offsetMs = 25 * HOUR + 31 * DAY
    const trimmed = await ace('kek:trim', [kek, '--json'])
    assert.equal(trimmed.exitCode, 0, JSON.stringify(trimmed.json))
    assert.equal(trimmed.json.minAvailableVersion, 2)
    assert.equal(keyState(kek, 1), 'PendingDeletion')
    assert.equal(keyState(kek, 2), 'Enabled')
    await assertAllDecrypt(assert, expected)
  }).timeout(60_000)

  test('rotate:kek --dry-run estimates from the requests/s ceiling (quota-bound)', async ({
    assert,
  }) => {
    await driver.close()
    driver = awsDriverFor(fixture, { requestsPerSecond: 20 }).driver
    const kek = kekName('awsplan')
    await driver.createKey(kek)
    await seed(kek, 100)
    const plan = await ace('rotate:kek', [kek, '--dry-run', '--json'])
    assert.equal(plan.exitCode, 0, JSON.stringify(plan.json))
    assert.equal(plan.json.staleRows, 100)
    assert.equal(plan.json.quotaRowsPerSecond, 20)
    assert.isTrue(plan.json.quotaBound)
    assert.equal(plan.json.estimatedSeconds, 5)
    assert.equal(plan.json.estimatedSecondsPaced, 5)
    assert.deepEqual(await versionCounts(kek), { 1: 100 })
    const pre = await ace('rotation:preflight', [kek, '--json'])
    const planCheck = pre.json.checks.find((c: { name: string }) => c.name === 'plan')
    assert.match(planCheck.detail, /quota-bound by the KMS's 20 rows\/s$/)
  })

  test('an entry rewritten under the same version keeps its kek_version (aws:vN: prefix)', async ({
    assert,
  }) => {
    const kek = kekName('awsput')
    await driver.createKey(kek)
    const expected = await seed(kek, 2)
    const [id] = [...expected.keys()]
    const entries = await app.container.make(EntryService)
    await entries.update(id, { replaced: true })
    const row = await db.from('vault_entries').where('id', id).firstOrFail()
    assert.match(row.wrapped_dek, /^aws:v1:/)
    assert.equal(row.kek_version, 1)
    const entry = await entries.find(id)
    assert.deepEqual(entry.data, { replaced: true })
    // A writer that leaves kek_version to the trigger (the previous release) gets it from the prefix.
    const [other] = await db
      .from('vault_entries')
      .where('kek_name', kek)
      .whereNot('id', id)
      .select('wrapped_dek')
    await db.from('vault_entries').where('id', id).update({ wrapped_dek: other.wrapped_dek })
    const derived = await db.rawQuery(
      `INSERT INTO vault_entries (kek_name, wrapped_dek, ciphertext) VALUES (?, ?, '\\x00') RETURNING kek_version`,
      [kek, 'aws:v7:AAAA']
    )
    assert.equal(derived.rows[0].kek_version, 7)
  })

  test('rotate:kek killed with SIGKILL mid-run, then resumed: one new version, nothing lost', async ({
    assert,
  }) => {
    const kek = kekName('awscrash')
    await driver.createKey(kek)
    const expected = await seed(kek, 600)

    const child = spawnAce(
      ['rotate:kek', kek, '--batch-size', '50', '--sleep-ms', '50', '--json'],
      { ...fixture.env, AWS_KMS_REQUESTS_PER_SECOND: '2000' }
    )
    await waitFor(
      async () => {
        const row = await db.from('key_rotations').where('kek_name', kek).first()
        return row && Number(row.rewrapped) >= 100 ? row : null
      },
      { timeoutMs: 60_000 }
    )
    child.child.kill('SIGKILL')
    await child.exited

    const afterCrash = await db.from('key_rotations').where('kek_name', kek).firstOrFail()
    assert.equal(afterCrash.status, 'running', 'the killed run stays resumable')
    const counts = await versionCounts(kek)
    assert.isAbove(counts[1] ?? 0, 0, `killed too late: ${child.output().slice(-300)}`)
    assert.equal(Number(afterCrash.rewrapped), counts[2], 'counter matches rows committed')

    const rotations = await app.container.make(KeyRotationService)
    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.id, String(afterCrash.id))
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.targetVersion, 2)
    assert.equal(resumed.rewrapped, 600)
    assert.deepEqual(await versionCounts(kek), { 2: 600 })
    const info = await driver.readKey(kek)
    assert.equal(info!.latestVersion, 2, 'rotated once')
    const keys = [...fixture.server.model.keys.values()].filter((k) => k.tags.get(TAG_KEK) === kek)
    assert.lengthOf(keys, 2, 'one KMS key per version')
    await assertAllDecrypt(assert, expected)
  }).timeout(120_000)

  test('reencrypt between two aws-kms KEKs, interrupted and resumed', async ({ assert }) => {
    const from = kekName('awsfrom')
    const to = kekName('awsto')
    await driver.createKey(from)
    await driver.createKey(to)
    await driver.rotateKey(to)
    const expected = await seed(from, 120)
    const service = await app.container.make(ReencryptService)
    const controller = new AbortController()
    const first = await service.reencrypt(from, to, {
      batchSize: 40,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    })
    assert.equal(first.status, 'cancelled')
    assert.equal(first.reencrypted, 40)
    await assertAllDecrypt(assert, expected)

    const out = await ace('reencrypt', ['--from', from, '--to', to, '--batch-size', '40', '--json'])
    assert.equal(out.exitCode, 0, JSON.stringify(out.json))
    assert.equal(out.json.reencrypted, 120)
    const rows = await db.from('vault_entries').where('kek_name', to).select('wrapped_dek')
    assert.lengthOf(rows, 120)
    for (const row of rows) assert.match(row.wrapped_dek, /^aws:v2:/)
    assert.deepEqual(await versionCounts(to), { 2: 120 })
    await assertAllDecrypt(assert, expected)
  }).timeout(60_000)

  test('throttling during a run is pacing: the run completes with no failed row', async ({
    assert,
  }) => {
    const kek = kekName('awsthrottle')
    await driver.createKey(kek)
    const expected = await seed(kek, 200)
    fixture.server.injectFaults(
      Array.from({ length: 5 }, () => ({ type: 'ThrottlingException', operation: 'ReEncrypt' }))
    )
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { batchSize: 50 })
    assert.equal(run.status, 'completed')
    assert.equal(run.rewrapped, 200)
    assert.equal(run.failed, 0)
    assert.equal(fixture.server.pendingFaults, 0)
    await assertAllDecrypt(assert, expected)
  }).timeout(60_000)
})
