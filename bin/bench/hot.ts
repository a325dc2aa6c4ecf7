/*
|--------------------------------------------------------------------------
| HOT-update experiment (design.md: "Worth measuring before settling the
| schema")
|--------------------------------------------------------------------------
|
| Two fresh copies of the KEK's rows, built the same way so that only the
| layout differs:
| - `bench_copy_indexed`: as vault_entries (primary key + the scan index
|   on (kek_name, kek_version, id), fillfactor 100);
| - `bench_copy_hot`: fillfactor 70 and only the primary key, so an UPDATE
|   that changes wrapped_dek and kek_version can stay on its page (HOT).
| Both get the same kek_version trigger as vault_entries. The floor runs
| on each (there and back); WAL bytes per row and the HOT share of the
| updates are read from Postgres. Nothing reads these tables: no load.
|
*/
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { round } from './sampler.js'
import { runFloor, scramble, unscramble } from './variants.js'

type Db = (typeof import('@adonisjs/lucid/services/db'))['default']

/** One floor pass on one copy. */
export interface HotPass {
  table: string
  pass: number
  rows: number
  seconds: number
  rowsPerSecond: number
  walBytesPerRow: number | null
  /** Share of the pass's updates that were HOT (from pg_stat_user_tables). */
  hotShare: number | null
}

/** The experiment's result. */
export interface HotResult {
  passes: HotPass[]
  /** Table + index sizes after the passes, MB. */
  sizesMb: Record<string, number>
  /** Seconds to build each copy (not part of the passes). */
  buildSeconds: Record<string, number>
}

const COPIES = [
  { table: 'bench_copy_indexed', fillfactor: 100, scanIndex: true },
  { table: 'bench_copy_hot', fillfactor: 70, scanIndex: false },
]

async function lsn(db: Db): Promise<string | null> {
  try {
    const result = await db.rawQuery('SELECT pg_current_wal_lsn()::text AS l')
    return result.rows[0].l
  } catch {
    return null
  }
}

async function updateCounts(db: Db, table: string) {
  // Statistics reach pg_stat_user_tables with a delay of up to about a second.
  await sleep(1500)
  const { rows } = await db.rawQuery(
    `SELECT n_tup_upd::bigint AS upd, n_tup_hot_upd::bigint AS hot
       FROM pg_stat_user_tables WHERE relname = ?`,
    [table]
  )
  return rows[0] ? { upd: Number(rows[0].upd), hot: Number(rows[0].hot) } : null
}

/**
 * Builds both copies of the rows of `kekName` (all at `version`), runs the
 * floor there and back on each, drops them.
 */
export async function hotExperiment(
  db: Db,
  kekName: string,
  version: number,
  batchSize: number,
  log: (message: string) => void
): Promise<HotResult> {
  const passes: HotPass[] = []
  const sizesMb: Record<string, number> = {}
  const buildSeconds: Record<string, number> = {}
  try {
    for (const copy of COPIES) {
      const t0 = performance.now()
      await db.rawQuery(`DROP TABLE IF EXISTS ${copy.table}`)
      await db.rawQuery(
        `CREATE TABLE ${copy.table} WITH (fillfactor = ${copy.fillfactor}) AS
           SELECT * FROM vault_entries WITH NO DATA`
      )
      await db.rawQuery(
        `INSERT INTO ${copy.table} SELECT * FROM vault_entries WHERE kek_name = ? ORDER BY id`,
        [kekName]
      )
      await db.rawQuery(`ALTER TABLE ${copy.table} ADD PRIMARY KEY (id)`)
      if (copy.scanIndex) {
        await db.rawQuery(
          `CREATE INDEX ${copy.table}_scan_idx ON ${copy.table} (kek_name, kek_version, id)`
        )
      }
      await db.rawQuery(`
        CREATE TRIGGER ${copy.table}_kek_version_update
        BEFORE UPDATE OF wrapped_dek ON ${copy.table}
        FOR EACH ROW WHEN (
          NEW.wrapped_dek IS DISTINCT FROM OLD.wrapped_dek
          AND NEW.kek_version IS NOT DISTINCT FROM OLD.kek_version
        )
        EXECUTE FUNCTION vault_entries_kek_version_from_dek()`)
      buildSeconds[copy.table] = round((performance.now() - t0) / 1000, 1)
    }
    for (const copy of COPIES) {
      for (const [pass, from, to, transform] of [
        [1, version, version + 1000, scramble],
        [2, version + 1000, version, unscramble],
      ] as const) {
        await db.rawQuery(`VACUUM (ANALYZE) ${copy.table}`)
        await db.rawQuery('CHECKPOINT').catch(() => {})
        const before = await updateCounts(db, copy.table)
        const walFrom = await lsn(db)
        const r = await runFloor(db, {
          table: copy.table,
          kekName,
          fromVersion: from,
          toVersion: to,
          batchSize,
          transform,
        })
        const walTo = await lsn(db)
        const after = await updateCounts(db, copy.table)
        let walBytesPerRow: number | null = null
        if (walFrom && walTo) {
          const { rows } = await db.rawQuery('SELECT pg_wal_lsn_diff(?, ?)::bigint AS b', [
            walTo,
            walFrom,
          ])
          walBytesPerRow = Math.round(Number(rows[0].b) / Math.max(1, r.rows))
        }
        const upd = before && after ? after.upd - before.upd : 0
        const hotShare =
          before && after && upd > 0 ? round((after.hot - before.hot) / upd, 3) : null
        passes.push({
          table: copy.table,
          pass,
          rows: r.rows,
          seconds: round(r.seconds, 2),
          rowsPerSecond: Math.round(r.rows / r.seconds),
          walBytesPerRow,
          hotShare,
        })
        log(
          `  ${copy.table} pass ${pass}: ${Math.round(r.rows / r.seconds).toLocaleString()} rows/s, ${walBytesPerRow} WAL B/row, HOT ${hotShare === null ? '–' : Math.round(hotShare * 100) + '%'}`
        )
      }
      const { rows } = await db.rawQuery(
        `SELECT pg_total_relation_size(?::regclass)::bigint AS b`,
        [copy.table]
      )
      sizesMb[copy.table] = round(Number(rows[0].b) / 1024 / 1024, 1)
    }
  } finally {
    for (const copy of COPIES)
      await db.rawQuery(`DROP TABLE IF EXISTS ${copy.table}`).catch(() => {})
  }
  return { passes, sizesMb, buildSeconds }
}
