import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * Adds `kek_version` and `rotated_at` to a possibly large, live
 * `vault_entries`, without a long lock:
 *
 * 1. nullable columns without defaults (catalog-only changes);
 * 2. triggers that keep `kek_version` in step with `wrapped_dek` for writers
 *    that do not set it (the previous app version during a rolling deploy);
 *    their WHEN clauses keep them off the rotation's own UPDATEs;
 * 3. backfill from the `vN` prefix in id-range batches, each its own
 *    short transaction (resumable: only rows still NULL are touched);
 * 4. NOT NULL through a CHECK constraint added NOT VALID and validated
 *    (no write lock), which lets SET NOT NULL skip its table scan;
 * 5. the scan index built CONCURRENTLY.
 */
export default class extends BaseSchema {
  static disableTransactions = true

  /** Rows per backfill transaction. */
  static backfillBatch = 10_000

  async up() {
    this.defer(async (db) => {
      // Catalog changes in one short transaction; SET LOCAL keeps the lock
      // timeout on this transaction's connection only (a pool would not).
      await db.transaction(async (trx) => {
        await trx.rawQuery(`SET LOCAL lock_timeout = '5s'`)
        await trx.rawQuery(`ALTER TABLE vault_entries ADD COLUMN IF NOT EXISTS kek_version integer`)
        await trx.rawQuery(
          `ALTER TABLE vault_entries ADD COLUMN IF NOT EXISTS rotated_at timestamptz`
        )
        await trx.rawQuery(`
          CREATE OR REPLACE FUNCTION vault_entries_kek_version_from_dek() RETURNS trigger AS $$
          BEGIN
            NEW.kek_version := substring(NEW.wrapped_dek FROM '^vault:v([0-9]+):')::integer;
            RETURN NEW;
          END
          $$ LANGUAGE plpgsql
        `)
        await trx.rawQuery(
          `DROP TRIGGER IF EXISTS vault_entries_kek_version_insert ON vault_entries`
        )
        await trx.rawQuery(`
          CREATE TRIGGER vault_entries_kek_version_insert
          BEFORE INSERT ON vault_entries
          FOR EACH ROW WHEN (NEW.kek_version IS NULL)
          EXECUTE FUNCTION vault_entries_kek_version_from_dek()
        `)
        await trx.rawQuery(
          `DROP TRIGGER IF EXISTS vault_entries_kek_version_update ON vault_entries`
        )
        await trx.rawQuery(`
          CREATE TRIGGER vault_entries_kek_version_update
          BEFORE UPDATE OF wrapped_dek ON vault_entries
          FOR EACH ROW WHEN (
            NEW.wrapped_dek IS DISTINCT FROM OLD.wrapped_dek
            AND NEW.kek_version IS NOT DISTINCT FROM OLD.kek_version
          )
          EXECUTE FUNCTION vault_entries_kek_version_from_dek()
        `)
      })

      const bounds = await db.rawQuery(`SELECT min(id) AS lo, max(id) AS hi FROM vault_entries`)
      const lo = bounds.rows[0].lo === null ? null : BigInt(bounds.rows[0].lo)
      const hi = bounds.rows[0].hi === null ? null : BigInt(bounds.rows[0].hi)
      if (lo !== null && hi !== null) {
        const step = BigInt((this.constructor as any).backfillBatch)
        for (let start = lo - 1n; start < hi; start += step) {
          await db.rawQuery(
            `UPDATE vault_entries
                SET kek_version = substring(wrapped_dek FROM '^vault:v([0-9]+):')::integer
              WHERE id > ? AND id <= ? AND kek_version IS NULL`,
            [start.toString(), (start + step).toString()]
          )
        }
      }

      const bad = await db.rawQuery(
        `SELECT count(*)::int AS n FROM vault_entries WHERE kek_version IS NULL`
      )
      if (bad.rows[0].n > 0) {
        throw new Error(
          `${bad.rows[0].n} vault_entries rows have a wrapped_dek without a vault:vN: prefix; fix them and re-run`
        )
      }

      const briefly = (statements: string[]) =>
        db.transaction(async (trx) => {
          await trx.rawQuery(`SET LOCAL lock_timeout = '5s'`)
          for (const statement of statements) await trx.rawQuery(statement)
        })
      await briefly([
        `ALTER TABLE vault_entries DROP CONSTRAINT IF EXISTS vault_entries_kek_version_not_null`,
        `ALTER TABLE vault_entries ADD CONSTRAINT vault_entries_kek_version_not_null
           CHECK (kek_version IS NOT NULL) NOT VALID`,
      ])
      // Scans the table under a lock that lets writes go on.
      await db.rawQuery(
        `ALTER TABLE vault_entries VALIDATE CONSTRAINT vault_entries_kek_version_not_null`
      )
      // Uses the validated constraint instead of scanning under an exclusive lock.
      await briefly([
        `ALTER TABLE vault_entries ALTER COLUMN kek_version SET NOT NULL`,
        `ALTER TABLE vault_entries DROP CONSTRAINT vault_entries_kek_version_not_null`,
      ])

      await db.rawQuery(`DROP INDEX CONCURRENTLY IF EXISTS vault_entries_kek_version_id_idx`)
      await db.rawQuery(`
        CREATE INDEX CONCURRENTLY vault_entries_kek_version_id_idx
          ON vault_entries (kek_name, kek_version, id)
      `)
    })
  }

  async down() {
    this.defer(async (db) => {
      await db.rawQuery(`DROP INDEX CONCURRENTLY IF EXISTS vault_entries_kek_version_id_idx`)
      await db.rawQuery(`DROP TRIGGER IF EXISTS vault_entries_kek_version_insert ON vault_entries`)
      await db.rawQuery(`DROP TRIGGER IF EXISTS vault_entries_kek_version_update ON vault_entries`)
      await db.rawQuery(`DROP FUNCTION IF EXISTS vault_entries_kek_version_from_dek()`)
      await db.rawQuery(`ALTER TABLE vault_entries DROP COLUMN IF EXISTS rotated_at`)
      await db.rawQuery(`ALTER TABLE vault_entries DROP COLUMN IF EXISTS kek_version`)
    })
  }
}
