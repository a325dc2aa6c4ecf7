/*
|--------------------------------------------------------------------------
| The benchmark's own database
|--------------------------------------------------------------------------
|
| DATABASE_URL (from the process environment, not .env) is used as is;
| else BENCH_PG_URL is an admin URL on which `rewrap_bench` is (re)created
| and dropped at the end; else an embedded PostgreSQL under ./tmp.
|
*/
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { freePort, startEmbeddedPostgres, withDatabase } from '../embedded_postgres.js'

/** The database the benchmark runs on. */
export interface BenchDatabase {
  /** Connection URL of the benchmark database. */
  url: string
  /** Where it came from (for the report; no credentials). */
  source: 'DATABASE_URL' | 'BENCH_PG_URL' | 'embedded'
  /** Drops what the benchmark created. */
  cleanup(): Promise<void>
}

const BENCH_DATABASE = 'rewrap_bench'

/**
 * Resolves or creates the benchmark database.
 */
export async function prepareDatabase(): Promise<BenchDatabase> {
  if (process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, source: 'DATABASE_URL', cleanup: async () => {} }
  }
  let adminUrl = process.env.BENCH_PG_URL
  let stopCluster: (() => Promise<void>) | undefined
  let source: BenchDatabase['source'] = 'BENCH_PG_URL'
  if (!adminUrl) {
    const dir = fileURLToPath(new URL(`../../tmp/bench-pg-${process.pid}`, import.meta.url))
    const cluster = await startEmbeddedPostgres({
      dir,
      port: await freePort(),
      persistent: false,
      password: randomBytes(18).toString('base64url'),
    })
    adminUrl = cluster.adminUrl
    stopCluster = async () => {
      await cluster.stop()
      rmSync(dir, { recursive: true, force: true })
    }
    source = 'embedded'
  }
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`)
  await admin.query(`CREATE DATABASE ${BENCH_DATABASE}`)
  await admin.end()
  return {
    url: withDatabase(adminUrl, BENCH_DATABASE),
    source,
    async cleanup() {
      const client = new pg.Client({ connectionString: adminUrl })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`)
      await client.end()
      if (stopCluster) await stopCluster()
    },
  }
}

/**
 * The database part of a URL, without credentials (for the report).
 */
export function describeUrl(url: string): string {
  const parsed = new URL(url)
  return `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`
}
