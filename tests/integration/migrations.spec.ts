import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import { MigrationRunner } from '@adonisjs/lucid/migration'
import type { QueryClientContract } from '@adonisjs/lucid/types/database'
import { rejectsWith } from '#tests/helpers/errors'

/*
|--------------------------------------------------------------------------
| Migration 1700000000002 (rotation columns) on a table that holds rows
|--------------------------------------------------------------------------
|
| Runs the app's real migrations with Lucid's MigrationRunner on a
| dedicated connection whose search_path is a scratch schema, so the run's
| shared `public` schema (other suites use it) is never touched and stays
| migrated. Each test has a scratch schema of its own and brings it to the
| state it starts from: every test runs alone (`--tests`) as in the suite.
|
*/

/** The current test's scratch schema (also its connection name). */
let schema = ''
const ROTATION_MIGRATION = '1700000000002_add_rotation_columns_to_vault_entries'

/** The migration module, loaded from the URL the runner imports it from (same instance). */
const rotationMigrationUrl = new URL(
  `../../database/migrations/${ROTATION_MIGRATION}.ts`,
  import.meta.url
).href

/** Migrations in the app (the runner's step counts are relative to these). */
const migrationCount = readdirSync(new URL('../../database/migrations/', import.meta.url)).filter(
  (file) => /^\d+_.+\.ts$/.test(file)
).length

function client(): QueryClientContract {
  return db.connection(schema)
}

async function migrate(direction: 'up' | 'down', step?: number) {
  const runner =
    direction === 'up'
      ? new MigrationRunner(db, app, { direction, connectionName: schema, disableLocks: true })
      : new MigrationRunner(db, app, {
          direction,
          connectionName: schema,
          disableLocks: true,
          step,
        })
  // Not runner.close(): it would close every connection of the app.
  await runner.run()
  return runner
}

/** Rolls back everything after migration 1 (vault_entries as an old app had it). */
function rollbackToBeforeRotationColumns() {
  return migrate('down', migrationCount - 1)
}

async function columns(): Promise<Record<string, string>> {
  const { rows } = await client().rawQuery(
    `SELECT column_name, is_nullable FROM information_schema.columns
      WHERE table_schema = ? AND table_name = 'vault_entries'`,
    [schema]
  )
  return Object.fromEntries(rows.map((r: any) => [r.column_name, r.is_nullable]))
}

async function scanIndex() {
  const { rows } = await client().rawQuery(
    `SELECT i.indisvalid, i.indisready, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ? AND c.relname = 'vault_entries_kek_version_id_idx'`,
    [schema]
  )
  return rows[0] as { indisvalid: boolean; indisready: boolean; def: string } | undefined
}

async function triggers(): Promise<string[]> {
  const { rows } = await client().rawQuery(
    `SELECT t.tgname FROM pg_trigger t
       JOIN pg_class c ON c.oid = t.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ? AND c.relname = 'vault_entries' AND NOT t.tgisinternal
      ORDER BY 1`,
    [schema]
  )
  return rows.map((r: any) => r.tgname)
}

async function checkConstraints(): Promise<string[]> {
  const { rows } = await client().rawQuery(
    `SELECT con.conname FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ? AND c.relname = 'vault_entries' AND con.contype = 'c'`,
    [schema]
  )
  return rows.map((r: any) => r.conname)
}

/** Rows as an app before rotation support wrote them (no kek_version column). */
async function insertLegacyRows() {
  const rows: Array<{ id: number; version: number }> = []
  for (let id = 1; id <= 10; id++) rows.push({ id, version: 1 })
  for (let id = 11; id <= 20; id++) rows.push({ id, version: 3 })
  rows.push({ id: 1000, version: 12 }) // a gap wider than a backfill batch
  for (const row of rows) {
    await client().rawQuery(
      `INSERT INTO vault_entries (id, kek_name, wrapped_dek, ciphertext) VALUES (?, ?, ?, ?)`,
      [
        row.id,
        'legacy',
        `vault:v${row.version}:${randomBytes(60).toString('base64')}`,
        Buffer.from([1, row.id % 256]),
      ]
    )
  }
  return rows
}

/** The scratch schema as an app before rotation support had it, holding legacy rows. */
async function legacyTable() {
  const up = await migrate('up')
  if (up.status !== 'completed') throw up.error
  const down = await rollbackToBeforeRotationColumns()
  if (down.status !== 'completed') throw down.error
  return insertLegacyRows()
}

/** Legacy rows, then every migration up: the rotation columns on a table holding rows. */
async function migratedTableWithRows() {
  const legacy = await legacyTable()
  const up = await migrate('up')
  if (up.status !== 'completed') throw up.error
  return legacy
}

async function kekVersions(): Promise<Map<number, number | null>> {
  const { rows } = await client().rawQuery(`SELECT id, kek_version FROM vault_entries ORDER BY id`)
  return new Map(rows.map((r: any) => [Number(r.id), r.kek_version]))
}

test.group('migrations / rotation columns on a live table', (group) => {
  let batchBefore: number
  let Migration: { backfillBatch: number }

  group.setup(async () => {
    // Small backfill batches: the loop runs many times over the rows below.
    const module = await import(rotationMigrationUrl)
    Migration = module.default
    batchBefore = Migration.backfillBatch
    Migration.backfillBatch = 4
    return () => {
      Migration.backfillBatch = batchBefore
    }
  })

  group.each.setup(async () => {
    const name = `migtest_${process.pid}_${randomBytes(3).toString('hex')}`
    await db.rawQuery(`CREATE SCHEMA ${name}`)
    const primary = db.getRawConnection(db.primaryConnectionName)!
    db.manager.add(name, { ...(primary.config as any), searchPath: [name] })
    db.manager.connect(name)
    schema = name
    return async () => {
      await db.manager.close(name, true)
      await db.rawQuery(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
    }
  })

  test('all migrations run up, then roll back to before the rotation columns', async ({
    assert,
  }) => {
    const up = await migrate('up')
    assert.equal(up.status, 'completed', String(up.error))
    assert.property(await columns(), 'kek_version')

    const down = await rollbackToBeforeRotationColumns()
    assert.equal(down.status, 'completed', String(down.error))
    const cols = await columns()
    assert.notProperty(cols, 'kek_version')
    assert.notProperty(cols, 'rotated_at')
    assert.deepEqual(await triggers(), [])
  })

  test('up on a table holding rows: backfill, NOT NULL, valid index, triggers', async ({
    assert,
  }) => {
    const legacy = await legacyTable()

    const up = await migrate('up')
    assert.equal(up.status, 'completed', String(up.error))

    // Backfilled from the vN prefix, every row.
    const versions = await kekVersions()
    assert.equal(versions.size, legacy.length)
    for (const row of legacy) assert.equal(versions.get(row.id), row.version, `row ${row.id}`)

    // NOT NULL (and the helper CHECK constraint is gone again); rotated_at nullable.
    const cols = await columns()
    assert.equal(cols.kek_version, 'NO')
    assert.equal(cols.rotated_at, 'YES')
    assert.notInclude(await checkConstraints(), 'vault_entries_kek_version_not_null')
    // 23502 not_null_violation
    await rejectsWith(
      client().rawQuery(`UPDATE vault_entries SET kek_version = NULL WHERE id = 1`),
      '23502'
    )

    // The scan index exists, is valid and ready, on (kek_name, kek_version, id).
    const index = await scanIndex()
    assert.exists(index)
    assert.isTrue(index!.indisvalid)
    assert.isTrue(index!.indisready)
    assert.include(index!.def, '(kek_name, kek_version, id)')

    assert.deepEqual(await triggers(), [
      'vault_entries_kek_version_insert',
      'vault_entries_kek_version_update',
    ])
  })

  test('triggers keep kek_version in step for writers that do not set it', async ({ assert }) => {
    await migratedTableWithRows()
    // An old app version inserting without kek_version.
    const inserted = await client().rawQuery(
      `INSERT INTO vault_entries (id, kek_name, wrapped_dek, ciphertext)
       VALUES (3000, 'legacy', 'vault:v7:AAAA', '\\x01'::bytea) RETURNING id, kek_version`
    )
    const id = inserted.rows[0].id
    assert.equal(inserted.rows[0].kek_version, 7)

    // A writer that sets it explicitly keeps its value.
    const explicit = await client().rawQuery(
      `INSERT INTO vault_entries (id, kek_name, kek_version, wrapped_dek, ciphertext)
       VALUES (3001, 'legacy', 8, 'vault:v8:AAAA', '\\x01'::bytea) RETURNING kek_version`
    )
    assert.equal(explicit.rows[0].kek_version, 8)

    // An old app version rewriting wrapped_dek only: kek_version follows.
    const updated = await client().rawQuery(
      `UPDATE vault_entries SET wrapped_dek = 'vault:v9:BBBB' WHERE id = ? RETURNING kek_version`,
      [id]
    )
    assert.equal(updated.rows[0].kek_version, 9)

    // The rotation's own UPDATE sets both: the trigger stays out of it.
    const rotated = await client().rawQuery(
      `UPDATE vault_entries SET wrapped_dek = 'vault:v10:CCCC', kek_version = 10
        WHERE id = ? RETURNING kek_version`,
      [id]
    )
    assert.equal(rotated.rows[0].kek_version, 10)

    // A wrap without a vN prefix and no version cannot be stored.
    await rejectsWith(
      client().rawQuery(
        `INSERT INTO vault_entries (id, kek_name, wrapped_dek, ciphertext)
         VALUES (3002, 'legacy', 'garbage', '\\x01'::bytea)`
      ),
      '23502'
    )
    await client().rawQuery(`DELETE FROM vault_entries WHERE id >= 3000`)
  })

  test('down removes columns, triggers, function and index; rows stay', async ({ assert }) => {
    const legacy = await migratedTableWithRows()
    const before = legacy.length
    const down = await rollbackToBeforeRotationColumns()
    assert.equal(down.status, 'completed', String(down.error))

    const cols = await columns()
    assert.notProperty(cols, 'kek_version')
    assert.notProperty(cols, 'rotated_at')
    assert.deepEqual(await triggers(), [])
    assert.notExists(await scanIndex())
    const fn = await client().rawQuery(
      `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ? AND p.proname = 'vault_entries_kek_version_from_dek'`,
      [schema]
    )
    assert.lengthOf(fn.rows, 0)
    const { rows } = await client().rawQuery(`SELECT count(*)::int AS n FROM vault_entries`)
    assert.equal(rows[0].n, before)
  })

  test('a row without a vN prefix stops up with a clear error; fixed, up resumes', async ({
    assert,
  }) => {
    await legacyTable()
    await client().rawQuery(
      `INSERT INTO vault_entries (id, kek_name, wrapped_dek, ciphertext)
       VALUES (2000, 'legacy', 'not-a-vault-ciphertext', '\\x01'::bytea)`
    )
    const failed = await migrate('up')
    assert.equal(failed.status, 'error')
    assert.include(String(failed.error?.message), 'without a vault:vN: prefix')

    await client().rawQuery(
      `UPDATE vault_entries SET wrapped_dek = 'vault:v4:AAAA' WHERE id = 2000`
    )
    const resumed = await migrate('up')
    assert.equal(resumed.status, 'completed', String(resumed.error))
    const versions = await kekVersions()
    assert.equal(versions.get(2000), 4)
    assert.equal(versions.get(1), 1)
    assert.equal(versions.get(1000), 12)
    const index = await scanIndex()
    assert.isTrue(index!.indisvalid)
  })

  test('down and up again work; the shared schema is untouched', async ({ assert }) => {
    const legacy = await migratedTableWithRows()
    const down = await rollbackToBeforeRotationColumns()
    assert.equal(down.status, 'completed', String(down.error))
    const up = await migrate('up')
    assert.equal(up.status, 'completed', String(up.error))
    const cols = await columns()
    assert.equal(cols.kek_version, 'NO')
    const index = await scanIndex()
    assert.isTrue(index!.indisvalid)
    const versions = await kekVersions()
    assert.equal(versions.size, legacy.length)
    for (const row of legacy) assert.equal(versions.get(row.id), row.version, `row ${row.id}`)

    // The run's own database (public schema) is still fully migrated.
    const { rows } = await db.rawQuery(
      `SELECT is_nullable FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'vault_entries' AND column_name = 'kek_version'`
    )
    assert.equal(rows[0]?.is_nullable, 'NO')
  })
})
