import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { ready } from 'signify-ts'
import { createAuditRecord, type AuditRecord } from '#app/governance/audit_record'
import { AuditService } from '#services/audit_service'
import { AuditExportService } from '#services/audit_export_service'
import { Clock } from '#services/clock'
import { KeyLifecycleService } from '#services/key_lifecycle_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { runAce } from '#tests/helpers/ace'
import { createToken } from '#tests/helpers/auth'
import { ShiftedClock } from '#tests/helpers/clock'
import { seedSigner } from '#tests/helpers/governance'
import { otherSession } from '#tests/helpers/pg_sessions'
import { createKek, kekName, seed } from '#tests/helpers/rotation'
import { rememberSecret } from '#tests/helpers/secrets'

await ready()

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HOUR = 3_600_000

type Row = { seq: string; said: string; prev: string; record: string; signatures: string }

async function rows(): Promise<Row[]> {
  const { rows: all } = await db.rawQuery('SELECT * FROM audit_events ORDER BY seq')
  return all
}

async function count(): Promise<number> {
  const all = await rows()
  return all.length
}

async function recordsOf(filter: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
  const all = await rows()
  return all.map((r) => JSON.parse(r.record) as AuditRecord).filter(filter)
}

/** Runs `sql` as the superuser with the triggers bypassed (replica role), as an attacker with DBA rights would. */
async function asSuperuser(statements: Array<[string, unknown[]?]>) {
  const client = await otherSession('attacker')
  try {
    await client.query('BEGIN')
    await client.query('SET LOCAL session_replication_role = replica')
    for (const [sql, params] of statements) await client.query(sql, params)
    await client.query('COMMIT')
  } finally {
    await client.end()
  }
}

/** Exports, then runs the standalone verifier on the file in a child with no app or database env. */
async function standalone(file: string) {
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import=@poppinss/ts-exec', 'bin/verify_audit.ts', file],
      { cwd: ROOT, env: { PATH: process.env.PATH } }
    )
    return { code: 0, stdout }
  } catch (error) {
    const failed = error as { code: number; stdout: string }
    return { code: failed.code, stdout: failed.stdout }
  }
}

async function exportTo(): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.json')
  const run = await runAce('audit:export', ['--out', file, '--json'])
  if (run.exitCode !== 0) throw new Error(run.all.join('\n'))
  return file
}

/** Checks the tampered chain with audit:verify and the standalone verifier: both name `seq`. */
async function assertBrokenAt(assert: any, seq: number, said: string) {
  const verify = await runAce('audit:verify', ['--json'])
  assert.equal(verify.exitCode, 1)
  assert.equal(verify.json.ok, false)
  assert.equal(verify.json.index, seq)
  assert.equal(verify.json.said, said)
  const plain = await runAce('audit:verify', [])
  assert.equal(plain.exitCode, 1)
  assert.match(plain.stderr.join('\n'), new RegExp(`E_AUDIT_CHAIN_BROKEN: .*record ${seq}:`))
  const outside = await standalone(await exportTo())
  assert.equal(outside.code, 1)
  assert.match(outside.stdout, new RegExp(`^E_AUDIT_CHAIN_BROKEN: record ${seq}: `))
  assert.include(outside.stdout, said)
}

async function assertIntact(assert: any) {
  const verify = await runAce('audit:verify', ['--json'])
  assert.equal(verify.exitCode, 0, verify.all.join('\n'))
  assert.isTrue(verify.json.ok)
  assert.equal(verify.json.count, await count())
  const outside = await standalone(await exportTo())
  assert.equal(outside.code, 0, outside.stdout)
  assert.match(
    outside.stdout,
    new RegExp(`^OK: ${verify.json.count} records, head ${verify.json.head}`)
  )
}

/** Appends a few records so tampering has a middle to hit. */
async function appendSome(n: number) {
  const audit = await app.container.make(AuditService)
  for (let i = 0; i < n; i++) {
    await db.transaction((trx) =>
      audit.append(trx, { act: 'test.filler', actor: 'tests', outcome: 'done', data: { i } })
    )
  }
}

test.group('audit trail: records of acts', (group) => {
  const clock = new ShiftedClock()
  group.each.setup(() => {
    clock.offsetMs = 0
    app.container.swap(Clock, () => clock)
    return () => app.container.restore(Clock)
  })

  test('a rotation records started and finished, a retire records kek.retire; the chain verifies', async ({
    assert,
  }) => {
    const kek = kekName('audit')
    await createKek(kek)
    await seed(kek, 30)
    const rotations = await app.container.make(KeyRotationService)
    const run = await rotations.rotate(kek, { requestedBy: 'alice' })
    assert.equal(run.status, 'completed')
    const ofRun = await recordsOf((r) => r.a.data.run === run.id && r.a.data.kek === kek)
    assert.deepEqual(
      ofRun.map((r) => [r.a.act, r.a.actor, r.a.outcome]),
      [
        ['rotation.started', 'alice', 'started'],
        ['rotation.finished', 'alice', 'completed'],
      ]
    )
    assert.equal(ofRun[1].a.data.target_version, run.targetVersion)
    assert.equal(ofRun[1].a.data.rewrapped, 30)
    assert.isNull(ofRun[0].a.approvals)

    clock.offsetMs = 25 * HOUR
    const lifecycle = await app.container.make(KeyLifecycleService)
    await lifecycle.retire(kek, { requestedBy: 'bob' })
    const retired = await recordsOf((r) => r.a.act === 'kek.retire' && r.a.data.kek === kek)
    assert.lengthOf(retired, 1)
    assert.equal(retired[0].a.actor, 'bob')
    assert.equal(retired[0].a.data.min_version, run.targetVersion)
    await assertIntact(assert)
  })

  test('a refused act leaves no record; an act whose record cannot be written does not happen', async ({
    assert,
  }) => {
    const kek = kekName('audit')
    await createKek(kek)
    await seed(kek, 5)
    const before = await count()
    const lifecycle = await app.container.make(KeyLifecycleService)
    // Soak period not over: refused, nothing recorded.
    await assert.rejects(() => lifecycle.retire(kek))
    assert.lengthOf(await rows(), before)
    // A record that cannot be written (data with a key JSON would reorder) rolls the run row back.
    const audit = await app.container.make(AuditService)
    const error = await audit
      .withRecord(
        (trx) =>
          trx.rawQuery(
            `INSERT INTO key_rotations (kek_name, status, base_version, rotate_kek, options, trigger)
             VALUES (?, 'running', 1, true, '{}'::jsonb, 'cli') RETURNING id`,
            [kek]
          ),
        () => ({ act: 'test.bad', actor: 'tests', outcome: 'done', data: { 12: 'x' } })
      )
      .catch((e) => e)
    assert.instanceOf(error, Error)
    const { rows: runs } = await db.rawQuery('SELECT id FROM key_rotations WHERE kek_name = ?', [
      kek,
    ])
    assert.lengthOf(runs, 0)
    assert.lengthOf(await rows(), before)
  })

  test('20 concurrent appends make one unbroken chain', async ({ assert }) => {
    const before = await count()
    const audit = await app.container.make(AuditService)
    const appended = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.transaction((trx) =>
          audit.append(trx, {
            act: 'test.concurrent',
            actor: 'tests',
            outcome: 'done',
            data: { i },
          })
        )
      )
    )
    const seqs = appended.map((s) => s.record.a.seq).sort((a, b) => a - b)
    assert.deepEqual(
      seqs,
      Array.from({ length: 20 }, (_, i) => before + i)
    )
    const all = await rows()
    assert.lengthOf(all, before + 20)
    for (const [i, row] of all.entries()) {
      assert.equal(Number(row.seq), i)
      assert.equal(row.prev, i === 0 ? '' : all[i - 1].said)
    }
    await assertIntact(assert)
  })
})

test.group('audit trail: append-only and tamper evidence', () => {
  test('UPDATE, DELETE and TRUNCATE through the app connection are refused', async ({ assert }) => {
    await appendSome(2)
    const before = await rows()
    for (const table of ['audit_events', 'service_key_events']) {
      for (const sql of [
        `UPDATE ${table} SET said = said`,
        `DELETE FROM ${table}`,
        `TRUNCATE ${table}`,
      ]) {
        const error = await db.rawQuery(sql).catch((e) => e)
        assert.instanceOf(error, Error, sql)
        assert.match(error.message, /E_AUDIT_APPEND_ONLY/, sql)
      }
    }
    assert.deepEqual(await rows(), before)
  })

  test('a superuser editing a record is caught by audit:verify and by the standalone verifier', async ({
    assert,
  }) => {
    await appendSome(3)
    const all = await rows()
    const target = all[all.length - 2]
    const seq = Number(target.seq)
    const edited = target.record.replace('"outcome":"done"', '"outcome":"refused"')
    assert.notEqual(edited, target.record)
    await asSuperuser([['UPDATE audit_events SET record = $1 WHERE seq = $2', [edited, seq]]])
    try {
      await assertBrokenAt(assert, seq, target.said)
    } finally {
      await asSuperuser([
        ['UPDATE audit_events SET record = $1 WHERE seq = $2', [target.record, seq]],
      ])
    }
    await assertIntact(assert)
  })

  test('a superuser deleting a record is caught', async ({ assert }) => {
    await appendSome(3)
    const all = await rows()
    const gone = all[all.length - 2]
    const next = all[all.length - 1]
    await asSuperuser([['DELETE FROM audit_events WHERE seq = $1', [gone.seq]]])
    try {
      // The record after the gap now sits at the deleted position.
      await assertBrokenAt(assert, Number(gone.seq), next.said)
    } finally {
      await asSuperuser([
        [
          'INSERT INTO audit_events (seq, said, prev, record, signatures, created_at) VALUES ($1, $2, $3, $4, $5, now())',
          [gone.seq, gone.said, gone.prev, gone.record, gone.signatures],
        ],
      ])
    }
    await assertIntact(assert)
  })

  test('a superuser reordering two records is caught', async ({ assert }) => {
    await appendSome(3)
    const all = await rows()
    const [a, b] = all.slice(-3, -1)
    const swap = (x: Row, y: Row): Array<[string, unknown[]]> => [
      ['DELETE FROM audit_events WHERE seq = $1 OR seq = $2', [x.seq, y.seq]],
      [
        'INSERT INTO audit_events (seq, said, prev, record, signatures) VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)',
        [
          x.seq,
          y.said,
          y.prev,
          y.record,
          y.signatures,
          y.seq,
          x.said,
          x.prev,
          x.record,
          x.signatures,
        ],
      ],
    ]
    await asSuperuser(swap(a, b))
    try {
      await assertBrokenAt(assert, Number(a.seq), b.said)
    } finally {
      await asSuperuser([
        ['DELETE FROM audit_events WHERE seq = $1 OR seq = $2', [a.seq, b.seq]],
        [
          'INSERT INTO audit_events (seq, said, prev, record, signatures) VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)',
          [
            a.seq,
            a.said,
            a.prev,
            a.record,
            a.signatures,
            b.seq,
            b.said,
            b.prev,
            b.record,
            b.signatures,
          ],
        ],
      ])
    }
    await assertIntact(assert)
  })

  test('a superuser re-signing an edited record with a key the service KEL does not hold is caught', async ({
    assert,
  }) => {
    await appendSome(3)
    const all = await rows()
    const target = all[all.length - 2]
    const original = JSON.parse(target.record) as AuditRecord
    const previous = JSON.parse(all[all.length - 3].record) as AuditRecord
    const group = JSON.parse(target.signatures)
    // Same SAID scheme, same seq/prev, a different outcome, valid SAIDs; signed by a forged key.
    const forged = createAuditRecord({
      service: { aid: original.i, sn: Number.parseInt(group.s, 16), said: group.d },
      signers: [seedSigner(77)],
      previous,
      act: original.a.act,
      actor: original.a.actor,
      approvals: null,
      outcome: 'refused',
      dt: original.a.dt,
      data: original.a.data,
    })
    await asSuperuser([
      [
        'UPDATE audit_events SET record = $1, signatures = $2, said = $3 WHERE seq = $4',
        [
          JSON.stringify(forged.record),
          JSON.stringify(forged.signature),
          forged.record.d,
          target.seq,
        ],
      ],
    ])
    try {
      const verify = await runAce('audit:verify', ['--json'])
      assert.equal(verify.json.cause, 'E_SIGNATURE_INVALID')
      await assertBrokenAt(assert, Number(target.seq), forged.record.d)
    } finally {
      await asSuperuser([
        [
          'UPDATE audit_events SET record = $1, signatures = $2, said = $3 WHERE seq = $4',
          [target.record, target.signatures, target.said, target.seq],
        ],
      ])
    }
    await assertIntact(assert)
  })
})

test.group('audit trail: service key, API, secrets', () => {
  test('audit:rotate-key moves to the committed next key; old and new records verify', async ({
    assert,
  }) => {
    await appendSome(1)
    const rotated = await runAce('audit:rotate-key', ['--json'])
    assert.equal(rotated.exitCode, 0, rotated.all.join('\n'))
    const { rows: kel } = await db.rawQuery('SELECT sn FROM service_key_events ORDER BY sn')
    assert.equal(Number(kel[kel.length - 1].sn), rotated.json.sn)
    await appendSome(1)
    const after = await rows()
    const last = after[after.length - 1]
    assert.equal(JSON.parse(last.signatures).s, rotated.json.sn.toString(16))
    const marker = await recordsOf((r) => r.a.act === 'audit.key_rotated')
    assert.isAtLeast(marker.length, 1)
    await assertIntact(assert)
  })

  test('GET /audit pages the log with rotation:read; bad queries are 422', async ({
    client,
    assert,
  }) => {
    await appendSome(3)
    const token = await createToken(['rotation:read'])
    const total = await count()
    const first = await client.get('/audit').qs({ limit: 2 }).bearerToken(token)
    first.assertStatus(200)
    assert.deepEqual(
      first.body().data.map((r: { seq: number }) => r.seq),
      [0, 1]
    )
    assert.equal(first.body().next, 1)
    assert.equal(first.body().data[1].record.a.prev, first.body().data[0].record.d)
    const last = await client
      .get('/audit')
      .qs({ after: total - 2, limit: 5 })
      .bearerToken(token)
    last.assertStatus(200)
    assert.deepEqual(
      last.body().data.map((r: { seq: number }) => r.seq),
      [total - 1]
    )
    assert.isNull(last.body().next)
    const bad = await client.get('/audit').qs({ limit: 0 }).bearerToken(token)
    bad.assertStatus(422)
    assert.match(bad.body().errors[0].code, /^E_/)
    const anonymous = await client.get('/audit')
    anonymous.assertStatus(401)
    const entriesOnly = await createToken(['entries:read'])
    const forbidden = await client.get('/audit').bearerToken(entriesOnly)
    forbidden.assertStatus(403)
  })

  test('the seed is in neither database table nor the export; it is remembered for the log audit', async ({
    assert,
  }) => {
    const seedText = process.env.AUDIT_SIGNING_SEED!
    rememberSecret(seedText, 'AUDIT_SIGNING_SEED')
    await appendSome(1)
    const seedHex = Buffer.from(seedText, 'base64url').toString('hex')
    const { rows: tables } = await db.rawQuery(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`
    )
    for (const { table_name: table } of tables) {
      const { rows: hits } = await db.rawQuery(
        `SELECT count(*)::int AS n FROM "${table}" t WHERE t::text LIKE ? OR t::text LIKE ?`,
        [`%${seedText}%`, `%${seedHex}%`]
      )
      assert.equal(hits[0].n, 0, table)
    }
    const exporter = await app.container.make(AuditExportService)
    const exported = await exporter.export()
    const text = JSON.stringify(exported)
    assert.notInclude(text, seedText)
    assert.notInclude(text, seedHex)
  })

  test('the standalone verifier refuses a non-export and checks a checkpoint', async ({
    assert,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-'))
    const junk = join(dir, 'junk.json')
    writeFileSync(junk, '{"format":"something-else"}')
    const refused = await standalone(junk)
    assert.equal(refused.code, 1)
    assert.match(refused.stdout, /^E_AUDIT_CHAIN_BROKEN: not an audit export/)
    const file = await exportTo()
    const total = await count()
    const wrong = await promisify(execFile)(
      process.execPath,
      ['--import=@poppinss/ts-exec', 'bin/verify_audit.ts', file, '--count', String(total + 1)],
      { cwd: ROOT, env: { PATH: process.env.PATH } }
    ).catch((e) => e)
    assert.equal(wrong.code, 1)
    assert.match(wrong.stdout, /E_AUDIT_CHECKPOINT_MISMATCH: .*expected/)
  })
})
