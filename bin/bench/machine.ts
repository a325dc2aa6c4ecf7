/*
|--------------------------------------------------------------------------
| The machine and the PostgreSQL server the run measured
|--------------------------------------------------------------------------
*/
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import type { Db } from './context.js'
import { round } from './sampler.js'

/** The server's version and the settings that shape write performance. */
export interface PostgresInfo {
  version: string
  settings: Record<string, string>
}

const SETTINGS = [
  'shared_buffers',
  'synchronous_commit',
  'fsync',
  'wal_level',
  'max_wal_size',
  'checkpoint_timeout',
  'full_page_writes',
  'autovacuum',
]

/** Reads the server's version and {@link SETTINGS}. */
export async function postgresInfo(db: Db): Promise<PostgresInfo> {
  const { pgArray } = await import('#services/rotation_store')
  const versionResult = await db.rawQuery('SELECT version() AS v')
  const version = versionResult.rows[0].v as string
  const settingResult = await db.rawQuery(
    `SELECT name, setting, unit FROM pg_settings WHERE name = ANY(?)`,
    [pgArray(SETTINGS)]
  )
  const settingRows = settingResult.rows as Array<{
    name: string
    setting: string
    unit: string | null
  }>
  const settings = Object.fromEntries(
    settingRows.map((r) => [r.name, r.unit ? `${r.setting} ${r.unit}` : r.setting])
  )
  return { version, settings }
}

/** CPUs, memory, load, platform, Node, PostgreSQL and the git commit. */
export function machineInfo(postgres: PostgresInfo) {
  let commit: string | null = null
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
  } catch {}
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? null,
    availableParallelism: os.availableParallelism(),
    totalMemoryMb: Math.round(os.totalmem() / 1024 / 1024),
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: postgres.version,
    postgresSettings: postgres.settings,
    gitCommit: commit,
  }
}
