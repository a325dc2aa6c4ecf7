import { test } from '@japa/runner'
import { ShiftedClock } from '#tests/helpers/clock'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { KmsManager } from '#kms/kms_manager'
import { Clock } from '#services/clock'
import { KeyLifecycleService } from '#services/key_lifecycle_service'
import { KeyRotationService, type RotateOptions } from '#services/key_rotation_service'
import { runAce as ace } from '#tests/helpers/ace'
import {
  assertAllDecrypt,
  createKek,
  kekName,
  kmsDriver,
  rotateInKms,
  seed,
} from '#tests/helpers/rotation'
import { startTransitServer, vaultDriverFor, type TransitFixture } from '#tests/helpers/transit'

const HOUR = 3_600_000
const DAY = 24 * HOUR

const clock = new ShiftedClock()

async function lifecycle() {
  return app.container.make(KeyLifecycleService)
}

async function rotate(kek: string, options?: RotateOptions) {
  const rotations = await app.container.make(KeyRotationService)
  return rotations.rotate(kek, options)
}

async function retire(kek: string) {
  const service = await lifecycle()
  return service.retire(kek)
}

async function minDecryption(kek: string) {
  const driver = await kmsDriver(kek)
  const info = await driver.readKey(kek)
  return info!.minDecryptionVersion
}

async function oneWrappedDek(kek: string) {
  const row = await db.from('vault_entries').where('kek_name', kek).orderBy('id').first()
  return row.wrapped_dek as string
}

test.group('lifecycle: retire, unretire, trim', (group) => {
  group.each.setup(() => {
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('retire refuses during the soak period', async ({ assert }) => {
    const kek = kekName('life')
    await createKek(kek)
    await seed(kek, 20)
    await rotate(kek)
    clock.offsetMs = 23 * HOUR
    const error = await retire(kek).catch((e) => e)
    assert.equal(error.code, 'E_RETIRE_REFUSED')
    assert.match(error.message, /soak period/)

    const out = await ace('kek:retire', [kek, '--json'])
    assert.equal(out.exitCode, 1)
    assert.match(out.json.error, /^E_RETIRE_REFUSED: /)
    assert.equal(await minDecryption(kek), 1)
  })

  test('retire refuses while rows are below the latest version', async ({ assert }) => {
    const kek = kekName('life')
    await createKek(kek)
    await seed(kek, 30)
    await rotateInKms(kek)
    clock.offsetMs = 25 * HOUR
    const error = await retire(kek).catch((e) => e)
    assert.equal(error.code, 'E_RETIRE_REFUSED')
    assert.match(error.message, /30 rows .* below v2/)
    assert.equal(await minDecryption(kek), 1)
  })

  test('after retire old wraps no longer unwrap; unretire restores them', async ({ assert }) => {
    const kek = kekName('life')
    await createKek(kek)
    const expected = await seed(kek, 40)
    const oldWrap = await oneWrappedDek(kek)
    await rotate(kek, { batchSize: 16 })
    clock.offsetMs = 25 * HOUR

    const out = await ace('kek:retire', [kek, '--json'])
    assert.equal(out.exitCode, 0)
    assert.equal(out.json.minDecryptionVersion, 2)
    assert.isTrue(out.json.changed)
    const driver = await kmsDriver(kek)
    const error = await driver.unwrap(kek, [oldWrap]).catch((e) => e)
    assert.equal(error.code, 'E_KEY_VERSION_DISALLOWED')
    await assertAllDecrypt(assert, expected)

    const again = await retire(kek)
    assert.isFalse(again.changed)

    const back = await ace('kek:unretire', [kek, '--json'])
    assert.equal(back.exitCode, 0)
    assert.equal(back.json.minDecryptionVersion, 1)
    const [dek] = await driver.unwrap(kek, [oldWrap])
    assert.lengthOf(dek, 32)
  })

  test('trim refuses before the retention period, then deletes retired versions', async ({
    assert,
  }) => {
    const kek = kekName('life')
    await createKek(kek)
    await seed(kek, 10)
    const oldWrap = await oneWrappedDek(kek)
    await rotate(kek)
    const service = await lifecycle()

    const nothing = await service.trim(kek).catch((e) => e)
    assert.equal(nothing.code, 'E_TRIM_REFUSED')
    assert.match(nothing.message, /kek:retire first/)

    clock.offsetMs = 2 * DAY
    await service.retire(kek)
    clock.offsetMs = 2 * DAY + 29 * DAY
    const early = await ace('kek:trim', [kek, '--json'])
    assert.equal(early.exitCode, 1)
    assert.match(early.json.error, /^E_TRIM_REFUSED: .*retention period/)

    clock.offsetMs = 2 * DAY + 31 * DAY
    const done = await ace('kek:trim', [kek, '--json'])
    assert.equal(done.exitCode, 0, JSON.stringify(done.json))
    assert.equal(done.json.minAvailableVersion, 2)
    assert.equal(done.json.minEncryptionVersion, 2)

    const refused = await service.unretire(kek, { to: 1 }).catch((e) => e)
    assert.equal(refused.code, 'E_UNRETIRE_REFUSED')
    const driver = await kmsDriver(kek)
    const gone = await driver.unwrap(kek, [oldWrap]).catch((e) => e)
    assert.equal(gone.code, 'E_KEY_VERSION_DISALLOWED')
  })
})

test.group('lifecycle: preflight and verify', (group) => {
  group.each.setup(() => {
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('preflight passes on a ready KEK and reports the plan', async ({ assert }) => {
    const kek = kekName('pre')
    await createKek(kek)
    await seed(kek, 25)
    const out = await ace('rotation:preflight', [kek, '--json'])
    assert.equal(out.exitCode, 0, JSON.stringify(out.json))
    assert.isTrue(out.json.ok)
    assert.deepEqual(
      out.json.checks.map((c: { name: string }) => c.name),
      ['kms', 'key', 'permissions', 'runs', 'migrations', 'plan']
    )
    assert.equal(out.json.plan.staleRows, 25)
    assert.deepEqual(out.json.pendingMigrations, [])
  })

  test('preflight fails on an unknown KEK and on an unfinished run', async ({ assert }) => {
    const missing = await ace('rotation:preflight', [kekName('nope'), '--json'])
    assert.equal(missing.exitCode, 1)
    assert.isFalse(missing.json.ok)

    const kek = kekName('pre')
    await createKek(kek)
    await seed(kek, 30)
    const controller = new AbortController()
    const run = await rotate(kek, {
      batchSize: 10,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    })
    assert.equal(run.status, 'cancelled')
    const out = await ace('rotation:preflight', [kek, '--json'])
    assert.equal(out.exitCode, 1)
    const runs = out.json.checks.find((c: { name: string }) => c.name === 'runs')
    assert.isFalse(runs.ok)
    assert.match(runs.detail, /--resume/)
  })

  test('verify: exit 1 with stale rows, 0 once rewrapped; samples decrypt', async ({ assert }) => {
    const kek = kekName('ver')
    await createKek(kek)
    await seed(kek, 60)
    await rotateInKms(kek)
    const stale = await ace('rotation:verify', [kek, '--json'])
    assert.equal(stale.exitCode, 1)
    assert.equal(stale.json.staleRows, 60)

    await rotate(kek, { rotate: false })
    const out = await ace('rotation:verify', [kek, '--sample', '10', '--json'])
    assert.equal(out.exitCode, 0, JSON.stringify(out.json))
    assert.equal(out.json.staleRows, 0)
    assert.isAbove(out.json.sampled, 0)
    assert.equal(out.json.decrypted, out.json.sampled)

    await db
      .from('vault_entries')
      .where('kek_name', kek)
      .limit(1)
      .update({
        ciphertext: Buffer.alloc(40, 1),
      })
    const all = await ace('rotation:verify', [kek, '--sample', '1000', '--json'])
    assert.equal(all.exitCode, 1)
    assert.equal(all.json.failures[0].code, 'E_CIPHERTEXT_INVALID')
  })

  test('verify --full: decrypt-checks every row in batches and names each row that does not open', async ({
    assert,
  }) => {
    const kek = kekName('full')
    const other = kekName('oth')
    await createKek(kek)
    await createKek(other)
    const expected = await seed(kek, 250)
    await seed(other, 1)
    const ok = await ace('rotation:verify', [kek, '--full', '--batch-size', '40', '--json'])
    assert.equal(ok.exitCode, 0, JSON.stringify(ok.json))
    assert.deepInclude(ok.json, { ok: true, checked: 250, failed: 0, failures: [] })

    const ids = [...expected.keys()]
    const bad = [ids[17], ids[133], ids[249]].sort((a, b) => Number(a) - Number(b))
    // A tampered payload; a DEK moved from another row; a DEK wrapped by another KEK
    // (the stranded row of a write that raced a re-encrypt).
    await db
      .from('vault_entries')
      .where('id', bad[0])
      .update({ ciphertext: Buffer.alloc(40, 1) })
    const donor = await db.from('vault_entries').where('id', ids[0]).first()
    await db.from('vault_entries').where('id', bad[1]).update({ wrapped_dek: donor.wrapped_dek })
    const foreign = await db.from('vault_entries').where('kek_name', other).first()
    await db.from('vault_entries').where('id', bad[2]).update({ wrapped_dek: foreign.wrapped_dek })

    const sampled = await ace('rotation:verify', [kek, '--sample', '5', '--json'])
    const full = await ace('rotation:verify', [kek, '--full', '--batch-size', '40', '--json'])
    assert.equal(full.exitCode, 1)
    assert.equal(full.json.checked, 250)
    assert.equal(full.json.failed, 3)
    assert.deepEqual(
      full.json.failures.map((f: { id: string }) => f.id),
      bad
    )
    assert.equal(full.json.failures[0].code, 'E_CIPHERTEXT_INVALID')
    assert.isAtMost(sampled.json.sampled, 5)

    const text = await ace('rotation:verify', [kek, '--full'])
    assert.equal(text.exitCode, 1)
    const lines = text.logs.map((l) => l.message).join('\n')
    for (const id of bad) assert.include(lines, id)
    assert.include(lines, '247/250 rows decrypted')
  })

  test('verify --full checks every row when the ids differ in their number of digits', async ({
    assert,
  }) => {
    // Ids that cross a power of ten (…99991 to …100010): their text order is not their order.
    const { rows } = await db.rawQuery(
      `SELECT nextval(pg_get_serial_sequence('vault_entries', 'id'))::text AS id`
    )
    let power = 10n ** BigInt(rows[0].id.length)
    if (power - BigInt(rows[0].id) < 20n) power *= 10n
    await db.rawQuery(`SELECT setval(pg_get_serial_sequence('vault_entries', 'id'), ?)`, [
      (power - 10n).toString(),
    ])
    const kek = kekName('digits')
    await createKek(kek)
    const expected = await seed(kek, 20)
    const ids = [...expected.keys()]
    assert.isBelow(ids[0].length, ids[19].length, 'the ids cross a power of ten')

    const full = await ace('rotation:verify', [kek, '--full', '--batch-size', '5', '--json'])
    assert.equal(full.exitCode, 0, JSON.stringify(full.json))
    assert.deepInclude(full.json, { ok: true, checked: 20, failed: 0 })
  })
})

test.group('lifecycle over the vault driver (node-vault → in-process transit server)', (group) => {
  let fixture: TransitFixture

  group.setup(async () => {
    fixture = await startTransitServer()
    return () => fixture.close()
  })
  group.each.setup(() => {
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    return () => app.container.restoreAll()
  })

  function useVault(token?: string) {
    const { driver } = vaultDriverFor(token ? { ...fixture, token } : fixture, { batchSize: 50 })
    app.container.swap(
      KmsManager,
      () => new KmsManager({ default: 'vault', drivers: { vault: () => driver } })
    )
    return driver
  }

  test('preflight, rotate, verify, retire, unretire, retire, trim', async ({ assert }) => {
    const driver = useVault()
    const kek = kekName('vlife')
    await driver.createKey(kek)
    const expected = await seed(kek, 120)
    const oldWrap = await oneWrappedDek(kek)

    const pre = await ace('rotation:preflight', [kek, '--json'])
    assert.equal(pre.exitCode, 0, JSON.stringify(pre.json))
    assert.equal(pre.json.plan.staleRows, 120)

    await rotate(kek, { batchSize: 50 })
    const verified = await ace('rotation:verify', [kek, '--sample', '30', '--json'])
    assert.equal(verified.exitCode, 0, JSON.stringify(verified.json))

    clock.offsetMs = 25 * HOUR
    const retired = await ace('kek:retire', [kek, '--json'])
    assert.equal(retired.exitCode, 0)
    const disallowed = await driver.unwrap(kek, [oldWrap]).catch((e) => e)
    assert.equal(disallowed.code, 'E_KEY_VERSION_DISALLOWED')
    await assertAllDecrypt(assert, expected)

    const unretired = await ace('kek:unretire', [kek, '--json'])
    assert.equal(unretired.exitCode, 0)
    const [dek] = await driver.unwrap(kek, [oldWrap])
    assert.lengthOf(dek, 32)

    const again = await ace('kek:retire', [kek, '--json'])
    assert.equal(again.exitCode, 0)
    const early = await ace('kek:trim', [kek, '--json'])
    assert.equal(early.exitCode, 1)
    assert.match(early.json.error, /^E_TRIM_REFUSED/)

    clock.offsetMs = 25 * HOUR + 31 * DAY
    const trimmed = await ace('kek:trim', [kek, '--json'])
    assert.equal(trimmed.exitCode, 0, JSON.stringify(trimmed.json))
    assert.equal(trimmed.json.minAvailableVersion, 2)
    const info = await driver.readKey(kek)
    assert.equal(info!.minAvailableVersion, 2)
    assert.equal(info!.minEncryptionVersion, 2)
    await assertAllDecrypt(assert, expected)
  })

  test('preflight fails with a token the KMS refuses', async ({ assert }) => {
    const good = useVault()
    const kek = kekName('vlife')
    await good.createKey(kek)
    useVault('wrong-token')
    const out = await ace('rotation:preflight', [kek, '--json'])
    assert.equal(out.exitCode, 1)
    assert.isFalse(out.json.ok)
    const failed = out.json.checks.find((c: { ok: boolean }) => !c.ok)
    assert.equal(failed.name, 'kms')
    assert.match(failed.detail, /E_KMS_DENIED/)
  })
})
