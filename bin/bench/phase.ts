/*
|--------------------------------------------------------------------------
| One measured phase: settled start, sampled resources, foreground load
|--------------------------------------------------------------------------
*/
import { setTimeout as sleep } from 'node:timers/promises'
import type { Context, Db } from './context.js'
import type { ForegroundStats } from './load.js'
import { PhaseSampler, type PhaseResources } from './sampler.js'

/** What {@link measure} answers: the work's value and what the phase cost. */
export interface Phase<T> {
  value: T
  resources: PhaseResources
  foreground: ForegroundStats | null
}

/**
 * Brings the table to a comparable state before a measured phase: dead
 * tuples vacuumed, statistics fresh, dirty pages checkpointed, JS heap
 * collected. Not timed.
 */
export async function settle(ctx: Context, tables = ['vault_entries']) {
  for (const name of tables) await ctx.db.rawQuery(`VACUUM (ANALYZE) ${name}`)
  await ctx.db.rawQuery('CHECKPOINT').catch(() => {})
  ctx.gc()
  await sleep(500)
}

async function walLsn(db: Db): Promise<string | null> {
  try {
    const { rows } = await db.rawQuery('SELECT pg_current_wal_lsn()::text AS lsn')
    return rows[0].lsn
  } catch {
    return null
  }
}

async function walDiff(db: Db, from: string, to: string): Promise<number> {
  const { rows } = await db.rawQuery('SELECT pg_wal_lsn_diff(?, ?)::bigint AS bytes', [to, from])
  return Number(rows[0].bytes)
}

/**
 * Runs `work` as one measured phase: resources sampled, the foreground
 * load running when `withLoad`.
 */
export async function measure<T>(
  ctx: Context,
  label: string,
  withLoad: boolean,
  work: () => Promise<T>,
  tables?: string[]
): Promise<Phase<T>> {
  await settle(ctx, tables)
  const sampler = new PhaseSampler(
    [...ctx.children, ctx.load],
    () => walLsn(ctx.db),
    async () => {
      const result = await ctx.db.rawQuery(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`
      )
      return result.rows.map((r: { pid: number }) => r.pid)
    },
    ctx.gc
  )
  await sampler.start()
  if (withLoad) ctx.load.start(label, ctx.ids)
  let value: T
  let foreground: ForegroundStats | null = null
  try {
    value = await work()
  } finally {
    if (withLoad) foreground = await ctx.load.stop()
  }
  const resources = await sampler.stop((from, to) => walDiff(ctx.db, from, to))
  return { value, resources, foreground }
}
