/*
|--------------------------------------------------------------------------
| Seeding the benchmark KEK's rows
|--------------------------------------------------------------------------
*/
import type { Context } from './context.js'

/** What seeding needs and sets: the `Context` of a bench run, or the load harness's. */
export type SeedTarget = Pick<Context, 'db' | 'kekName' | 'current' | 'ids'> & {
  options: { seedBatch: number }
}
import { log } from './log.js'
import { runAce } from './processes.js'

/** What one seeding left: its time, and the KEK's rows in all. */
export interface Seeded {
  seconds: number
  totalRows: number
}

/**
 * Seeds `rows` rows with `node ace demo:seed` (EntryService.seed in its own
 * process, so the benchmark process's memory stays what the rotations use);
 * sets `ctx.current` and `ctx.ids` from the table.
 */
export async function seed(ctx: SeedTarget, rows: number): Promise<Seeded> {
  const result = await runAce([
    'demo:seed',
    '--kek',
    ctx.kekName,
    '--rows',
    String(rows),
    '--batch',
    String(ctx.options.seedBatch),
    '--json',
  ])
  const seconds = JSON.parse(result.stdout.trim().split('\n').pop()!).seconds as number
  log(
    `  seeded ${rows.toLocaleString()} rows in ${seconds.toFixed(1)} s (${Math.round(rows / seconds).toLocaleString()} rows/s)`
  )
  const { rows: bounds } = await ctx.db.rawQuery(
    `SELECT min(id)::text AS lo, max(id)::text AS hi, count(*)::bigint AS n,
            count(DISTINCT kek_version)::int AS versions, max(kek_version) AS v
       FROM vault_entries WHERE kek_name = ?`,
    [ctx.kekName]
  )
  if (bounds[0].versions !== 1) {
    throw new Error(
      `expected every row at one version before measuring, found ${bounds[0].versions}`
    )
  }
  ctx.current = bounds[0].v
  ctx.ids = { minId: Number(bounds[0].lo), maxId: Number(bounds[0].hi) }
  return { seconds, totalRows: Number(bounds[0].n) }
}
