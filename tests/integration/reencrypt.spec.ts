import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { EntryService } from '#services/entry_service'
import { ReencryptService, type ReencryptOptions } from '#services/reencrypt_service'
import { runAce as ace } from '#tests/helpers/ace'
import {
  assertAllDecrypt,
  createKek,
  kekName,
  kmsDriver,
  rotateInKms,
  seed,
  versionCounts,
} from '#tests/helpers/rotation'
import { backendsGone, holdRows } from '#tests/helpers/pg_sessions'
import { spawnAce } from '#tests/helpers/ace_child'

async function reencrypt(from: string, to: string, options?: ReencryptOptions) {
  const service = await app.container.make(ReencryptService)
  return service.reencrypt(from, to, options)
}

async function rowsOf(kek: string) {
  const [row] = await db.from('vault_entries').where('kek_name', kek).count('* as n')
  return Number(row.n)
}

test.group('reencrypt: recovery for a compromised KEK', () => {
  test('every row decrypts to its original data under the new KEK', async ({ assert }) => {
    const from = kekName('bad')
    const to = kekName('new')
    const other = kekName('oth')
    await createKek(from)
    await createKek(to)
    await createKek(other)
    const expected = await seed(from, 150)
    await rotateInKms(from)
    for (const [id, data] of await seed(from, 100, 150)) expected.set(id, data)
    await seed(other, 30)
    const before = await db
      .from('vault_entries')
      .whereIn('id', [...expected.keys()])
      .select('*')
    const otherBefore = await db.from('vault_entries').where('kek_name', other).orderBy('id')

    const out = await ace('reencrypt', ['--from', from, '--to', to, '--batch-size', '40', '--json'])
    assert.equal(out.exitCode, 0, JSON.stringify(out.json))
    assert.equal(out.json.status, 'completed')
    assert.equal(out.json.reencrypted, 250)
    assert.equal(await rowsOf(from), 0)
    assert.deepEqual(await versionCounts(to), { 1: 250 })
    await assertAllDecrypt(assert, expected)

    const rowsAfter = await db
      .from('vault_entries')
      .whereIn('id', [...expected.keys()])
      .select('*')
    const after = new Map(rowsAfter.map((r) => [String(r.id), r]))
    for (const row of before) {
      const now = after.get(String(row.id))!
      assert.equal(now.kek_name, to)
      assert.notEqual(now.wrapped_dek, row.wrapped_dek)
      assert.notDeepEqual(now.ciphertext, row.ciphertext)
    }
    assert.deepEqual(
      await db.from('vault_entries').where('kek_name', other).orderBy('id'),
      otherBefore
    )
  })

  test('a run interrupted after its first batch resumes to completion', async ({ assert }) => {
    const from = kekName('bad')
    const to = kekName('new')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 200)
    const controller = new AbortController()
    const first = await reencrypt(from, to, {
      batchSize: 50,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    })
    assert.equal(first.status, 'cancelled')
    assert.equal(first.reencrypted, 50)
    assert.equal(await rowsOf(from), 150)
    await assertAllDecrypt(assert, expected)

    const wrong = await reencrypt(from, kekName('else')).catch((e) => e)
    assert.equal(wrong.code, 'E_KEK_NOT_FOUND')

    const resumed = await reencrypt(from, to, { batchSize: 50 })
    assert.equal(resumed.id, first.id)
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.reencrypted, 200)
    assert.equal(resumed.totalRows, 200)
    assert.equal(await rowsOf(from), 0)
    await assertAllDecrypt(assert, expected)
  })

  test('reencrypt killed with SIGKILL mid-run, then resumed, ends with every row under the new KEK', async ({
    assert,
    cleanup,
  }) => {
    const from = kekName('bad')
    const to = kekName('new')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 1500)

    // Killed while its 15th batch (rows 700-749) waits for a held row.
    const hold = await holdRows([[...expected.keys()][720]])
    const { child, exited, killIfRunning } = spawnAce([
      'reencrypt',
      '--from',
      from,
      '--to',
      to,
      '--batch-size',
      '50',
      '--json',
    ])
    cleanup(async () => {
      killIfRunning()
      await hold.release()
    })
    const waiting = await hold.blocked()
    const running = await db.from('reencrypt_runs').where('from_kek', from).firstOrFail()
    assert.equal(running.status, 'running')
    assert.equal(Number(running.reencrypted), 700, 'fourteen batches committed before the held row')
    child.kill('SIGKILL')
    assert.isNull(await exited, 'killed by the signal')
    // The dead process's waiting statement ends (committed or not) once the row is free.
    await hold.release()
    await backendsGone(waiting)

    const afterCrash = await db.from('reencrypt_runs').where('from_kek', from).firstOrFail()
    assert.equal(afterCrash.status, 'running')
    const moved = await rowsOf(to)
    assert.oneOf(moved, [700, 750], 'nothing past the parked batch')
    assert.equal(Number(afterCrash.reencrypted), moved, 'counter matches rows committed')
    assert.equal(await rowsOf(from), 1500 - moved)
    await assertAllDecrypt(assert, expected)

    const resumed = await reencrypt(from, to, { batchSize: 200 })
    assert.equal(resumed.id, String(afterCrash.id))
    assert.equal(resumed.status, 'completed')
    assert.equal(resumed.reencrypted, 1500)
    assert.equal(resumed.skipped, 0)
    assert.equal(await rowsOf(from), 0)
    assert.deepEqual(await versionCounts(to), { 1: 1500 })
    await assertAllDecrypt(assert, expected)
  }).timeout(120_000)

  test('rows that cannot be read are left in place and recorded with their error code', async ({
    assert,
  }) => {
    const from = kekName('bad')
    const to = kekName('new')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 60)
    const ids = [...expected.keys()]
    // One payload tampered with (does not authenticate), one DEK wrapped by a KEK version that does not exist.
    const [tampered, badWrap] = [ids[10], ids[40]]
    await db.rawQuery(
      `UPDATE vault_entries SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1) WHERE id = ?`,
      [tampered]
    )
    const wrap = await db.from('vault_entries').where('id', badWrap).firstOrFail()
    await db
      .from('vault_entries')
      .where('id', badWrap)
      .update({ wrapped_dek: wrap.wrapped_dek.replace(/^vault:v1:/, 'vault:v7:') })
    const before = await db.from('vault_entries').whereIn('id', [tampered, badWrap]).orderBy('id')

    const out = await ace('reencrypt', ['--from', from, '--to', to, '--batch-size', '25', '--json'])
    assert.equal(out.exitCode, 1)
    assert.equal(out.json.status, 'completed_with_errors')
    assert.equal(out.json.reencrypted, 58)
    assert.equal(out.json.failed, 2)
    assert.include(out.json.lastError, 'reencrypt_failures')
    assert.deepEqual(
      out.json.failures.map((f: any) => [f.entryId, f.errorCode]),
      [
        [tampered, 'E_CIPHERTEXT_INVALID'],
        // A wrap naming a KEK version the KMS does not have does not unwrap (the KMS contract).
        [badWrap, 'E_CIPHERTEXT_INVALID'],
      ]
    )
    assert.deepEqual(
      await db.from('vault_entries').whereIn('id', [tampered, badWrap]).orderBy('id'),
      before,
      'left exactly as they were'
    )
    expected.delete(tampered)
    expected.delete(badWrap)
    await assertAllDecrypt(assert, expected)
    const rows = await db
      .from('reencrypt_failures')
      .where('run_id', out.json.id)
      .orderBy('entry_id')
    assert.deepEqual(
      rows.map((r) => [String(r.entry_id), r.attempts >= 1]),
      [
        [tampered, true],
        [badWrap, true],
      ]
    )
    assert.notInclude(JSON.stringify(out.json), wrap.wrapped_dek, 'no wrapped DEK in the output')
  })

  test('a write racing a batch wins (CAS skip); the next pass moves the row', async ({
    assert,
  }) => {
    const from = kekName('bad')
    const to = kekName('new')
    await createKek(from)
    await createKek(to)
    const expected = await seed(from, 120)
    const first = [...expected.keys()][0]
    const entries = await app.container.make(EntryService)
    const driver = await kmsDriver(to)
    const wrap = driver.wrap
    let raced = false
    // Between the batch's read and its UPDATE: a normal write rewrites row 1 (under `from`).
    driver.wrap = async (name, deks) => {
      if (name === to && !raced) {
        raced = true
        await entries.update(first, { rewritten: true })
        expected.set(first, { rewritten: true })
      }
      return wrap.call(driver, name, deks)
    }
    try {
      const run = await reencrypt(from, to, { batchSize: 30 })
      assert.equal(run.status, 'completed')
      assert.equal(run.skipped, 1)
      assert.equal(run.reencrypted, 120)
      assert.equal(run.pass, 2)
    } finally {
      driver.wrap = wrap
    }
    assert.equal(await rowsOf(from), 0)
    await assertAllDecrypt(assert, expected)
  })

  test('refusals: same KEK, unknown target, another target for an unfinished run', async ({
    assert,
  }) => {
    const from = kekName('bad')
    const to = kekName('new')
    const third = kekName('thr')
    await createKek(from)
    await createKek(to)
    await createKek(third)
    await seed(from, 20)
    const same = await ace('reencrypt', ['--from', from, '--to', from, '--json'])
    assert.equal(same.exitCode, 1)
    assert.match(same.json.error, /^E_REENCRYPT_REFUSED/)
    const missing = await ace('reencrypt', ['--from', from, '--to', kekName('nope'), '--json'])
    assert.equal(missing.exitCode, 1)
    assert.match(missing.json.error, /^E_KEK_NOT_FOUND/)

    const controller = new AbortController()
    await reencrypt(from, to, {
      batchSize: 5,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    })
    const other = await reencrypt(from, third).catch((e) => e)
    assert.equal(other.code, 'E_REENCRYPT_REFUSED')
    assert.match(other.message, /--to /)
  })
})
