import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import { ShiftedClock } from '#tests/helpers/clock'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { LocalKmsDriver } from '#kms/drivers/local'
import { decodeRootKey } from '#kms/drivers/local_factory'
import { KmsManager } from '#kms/kms_manager'
import { LocalKeyringStore } from '#kms/local_keyring_store'
import { Clock } from '#services/clock'
import { KekPolicies } from '#services/kek_policies'
import { manageKeks } from '#tests/helpers/kek_policies'
import { KeyRotationService } from '#services/key_rotation_service'
import { AdvisoryLock, lockKeys } from '#services/advisory_lock'
import { RotationScheduler } from '#services/rotation_scheduler'
import {
  assertAllDecrypt,
  createKek,
  kekName,
  latestVersion,
  rotateInKms,
  seed,
  versionCounts,
} from '#tests/helpers/rotation'
import { spawnAce } from '#tests/helpers/ace_child'
import { appConnectionString } from '#tests/helpers/pg_sessions'
import { waitFor } from '#tests/helpers/wait'

const DAY = 24 * 3_600_000

const clock = new ShiftedClock()

/** A KMS manager whose local driver stamps versions with the shifted clock. */
async function shiftedKms() {
  const lucid = await app.container.make('lucid.db')
  const store = new LocalKeyringStore(lucid, decodeRootKey(process.env.KMS_ROOT_KEY), randomBytes)
  const driver = new LocalKmsDriver({
    store,
    now: () => Math.floor(clock.now().getTime() / 1000),
  })
  return new KmsManager({ default: 'local', drivers: { local: () => driver } } as any)
}

/** The scheduler manages exactly these KEKs, with the configured default periods. */
const manage = manageKeks

async function tick() {
  const scheduler = await app.container.make(RotationScheduler)
  return scheduler.tick({ rotate: { batchSize: 100 } })
}

async function runsOf(kek: string) {
  return db.from('key_rotations').where('kek_name', kek).orderBy('id')
}

test.group('scheduler: rotation by key age', (group) => {
  group.setup(async () => {
    const manager = await shiftedKms()
    app.container.swap(KmsManager, () => manager)
    app.container.swap(Clock, () => clock)
    return () => {
      app.container.restore(KmsManager)
      app.container.restore(Clock)
      app.container.restore(KekPolicies)
    }
  })
  group.each.setup(() => {
    clock.offsetMs = 0
  })

  test('before the cryptoperiod nothing happens', async ({ assert }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    await seed(kek, 50)
    clock.offsetMs = 89 * DAY
    const [decision] = await tick()
    assert.equal(decision.action, 'none', decision.reason)
    assert.equal(new Date(decision.dueAt!).getTime() - Date.now() > 0, true)
    assert.equal(await latestVersion(kek), 1)
    assert.lengthOf(await runsOf(kek), 0)
  })

  test('past the cryptoperiod it rotates and rewraps, then rests', async ({ assert }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    const expected = await seed(kek, 250)
    clock.offsetMs = 90 * DAY + 60_000
    const [decision] = await tick()
    assert.equal(decision.action, 'rotated', decision.reason)
    assert.equal(decision.run?.trigger, 'scheduler')
    assert.equal(await latestVersion(kek), 2)
    assert.deepEqual(await versionCounts(kek), { 2: 250 })
    await assertAllDecrypt(assert, expected)

    const [next] = await tick()
    assert.equal(next.action, 'none', next.reason)
    assert.equal(await latestVersion(kek), 2)
  })

  test('after downtime it catches up once', async ({ assert }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    await seed(kek, 40)
    clock.offsetMs = 400 * DAY
    const [first] = await tick()
    assert.equal(first.action, 'rotated', first.reason)
    const [second] = await tick()
    assert.equal(second.action, 'none', second.reason)
    assert.equal(await latestVersion(kek), 2)
    assert.lengthOf(await runsOf(kek), 1)
    assert.deepEqual(await versionCounts(kek), { 2: 40 })
  })

  test('two concurrent ticks start one run', async ({ assert }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    await seed(kek, 1500)
    clock.offsetMs = 91 * DAY
    const ticks = await Promise.all([tick(), tick(), tick()])
    const decisions = ticks.flat()
    const actions = decisions.map((d) => d.action).sort()
    assert.equal(actions.filter((a) => a === 'rotated').length, 1, JSON.stringify(decisions))
    assert.isTrue(actions.every((a) => ['rotated', 'busy', 'none'].includes(a)))
    assert.equal(await latestVersion(kek), 2)
    assert.lengthOf(await runsOf(kek), 1)
    assert.deepEqual(await versionCounts(kek), { 2: 1500 })
  })

  test('a rotation running elsewhere (rotate:kek) makes the tick stand aside', async ({
    assert,
  }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    await seed(kek, 20)
    clock.offsetMs = 91 * DAY
    const held = await new AdvisoryLock().tryAcquireOn(
      appConnectionString(),
      lockKeys.rotation(kek)
    )
    try {
      const [decision] = await tick()
      assert.equal(decision.action, 'busy', decision.reason)
      assert.match(decision.reason, /E_ROTATION_IN_PROGRESS/)
    } finally {
      await held!.release()
    }
    assert.equal(await latestVersion(kek), 1)
    const [after] = await tick()
    assert.equal(after.action, 'rotated', after.reason)
  })

  test('a rotation done outside the app is rewrapped', async ({ assert }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    const expected = await seed(kek, 120)
    clock.offsetMs = 10 * DAY
    await rotateInKms(kek)
    const [decision] = await tick()
    assert.equal(decision.action, 'rewrapped', decision.reason)
    assert.equal(await latestVersion(kek), 2)
    assert.deepEqual(await versionCounts(kek), { 2: 120 })
    const [run] = await runsOf(kek)
    assert.isFalse(run.rotate_kek)
    await assertAllDecrypt(assert, expected)
  })

  test('an interrupted run is resumed, not rotated again', async ({ assert }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    await seed(kek, 300)
    const controller = new AbortController()
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, {
      batchSize: 50,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    })
    assert.equal(run.status, 'cancelled')
    assert.equal(run.cancelledBy, 'shutdown', 'an abort without a reason is a shutdown')
    const [decision] = await tick()
    assert.equal(decision.action, 'resumed', decision.reason)
    assert.equal(decision.run?.id, run.id)
    assert.equal(await latestVersion(kek), 2)
    assert.deepEqual(await versionCounts(kek), { 2: 300 })
  })

  test('a run an operator cancelled stays paused: not resumed, not rotated, until resumed by hand', async ({
    assert,
  }) => {
    const kek = kekName('sch')
    manage(kek)
    await createKek(kek)
    const expected = await seed(kek, 300)
    const controller = new AbortController()
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, {
      batchSize: 50,
      signal: controller.signal,
      onProgress: () => controller.abort('operator'),
    })
    assert.equal(run.status, 'cancelled')
    assert.equal(run.cancelledBy, 'operator')
    const left = await versionCounts(kek)
    assert.isAbove(left[1] ?? 0, 0)

    // Even long past the cryptoperiod: the scheduler stands aside.
    clock.offsetMs = 200 * DAY
    for (let i = 0; i < 2; i++) {
      const [decision] = await tick()
      assert.equal(decision.action, 'skipped')
      assert.include(decision.reason, 'cancelled by an operator')
      assert.include(decision.reason, `rotate:kek ${kek} --resume`)
      assert.equal(decision.run?.id, run.id)
    }
    assert.equal(await latestVersion(kek), 2, 'not rotated again')
    assert.deepEqual(await versionCounts(kek), left, 'no row moved')

    const resumed = await rotations.rotate(kek, { resume: true })
    assert.equal(resumed.id, run.id)
    assert.equal(resumed.status, 'completed')
    assert.isNull(resumed.cancelledBy)
    assert.deepEqual(await versionCounts(kek), { 2: 300 })
    await assertAllDecrypt(assert, expected)
  })

  test('a KEK the KMS does not know is skipped; the others go on', async ({ assert }) => {
    const kek = kekName('sch')
    const missing = kekName('gone')
    manage(missing, kek)
    await createKek(kek)
    await seed(kek, 10)
    clock.offsetMs = 95 * DAY
    const decisions = await tick()
    assert.deepEqual(
      decisions.map((d) => [d.kekName, d.action]),
      [
        [missing, 'skipped'],
        [kek, 'rotated'],
      ]
    )
  })
})

/** `node ace scheduler:run` for one managed KEK on a cron `schedule`, killed after the test. */
function startScheduler(
  kek: string,
  schedule: string,
  cleanup: (fn: () => Promise<void> | void) => void
) {
  const ace = spawnAce(['scheduler:run'], { REWRAP_MANAGED_KEKS: kek, REWRAP_SCHEDULE: schedule })
  cleanup(() => {
    ace.killIfRunning()
  })
  /** The completed run to `target` (polled), or an error with the process output. */
  const completedRun = (target: number) =>
    waitFor(
      async () => {
        if (ace.child.exitCode !== null) throw new Error('scheduler:run exited early')
        const run = await db
          .from('key_rotations')
          .where({ kek_name: kek, target_version: target, status: 'completed' })
          .first()
        return run ?? null
      },
      { timeoutMs: 90_000, what: `a completed scheduler run to v${target}` }
    ).catch((error) => {
      throw new Error(`${error.message}; scheduler:run output:\n${ace.output().slice(-2000)}`)
    })
  return { ...ace, completedRun }
}

test.group('scheduler:run (child process, adonisjs-scheduler)', () => {
  test('fires the lifecycle task at start-up, then again on its cron schedule', async ({
    assert,
    cleanup,
  }) => {
    const kek = kekName('cron')
    await createKek(kek)
    await seed(kek, 60)
    // Rotated outside the app: the task finds stale rows and rewraps them
    // (whatever the key age; the key itself is not due for 90 days).
    await rotateInKms(kek)

    // At start-up: a schedule that does not fire during the test (1 January).
    const yearly = startScheduler(kek, '0 0 1 1 *', cleanup)
    const first = await yearly.completedRun(2)
    assert.equal(first.trigger, 'scheduler')
    assert.isFalse(first.rotate_kek, 'the KMS was ahead: rewrap only')
    assert.equal(Number(first.rewrapped), 60)
    assert.deepEqual(await versionCounts(kek), { 2: 60 })
    yearly.child.kill('SIGTERM')
    await yearly.exited

    // On the cron: every second. Its start-up run takes v3; only the cron can take v4.
    await rotateInKms(kek)
    const everySecond = startScheduler(kek, '* * * * * *', cleanup)
    const startup = await everySecond.completedRun(3)
    await rotateInKms(kek)
    const onCron = await everySecond.completedRun(4)
    assert.notEqual(String(onCron.id), String(startup.id))
    assert.equal(onCron.trigger, 'scheduler')
    assert.equal(Number(onCron.rewrapped), 60)
    assert.deepEqual(await versionCounts(kek), { 4: 60 })
    assert.equal(await latestVersion(kek), 4, 'the task never rotated on its own (key not due)')
    everySecond.child.kill('SIGTERM')
    await everySecond.exited
  }).timeout(300_000)
})
