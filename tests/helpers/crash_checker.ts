/*
|--------------------------------------------------------------------------
| Crash-and-resume checker: seeded randomness, digests, crash windows
|--------------------------------------------------------------------------
*/
import { createHash } from 'node:crypto'
import pg from 'pg'
import db from '@adonisjs/lucid/services/db'
import { entryAad, openEnvelope } from '#crypto/envelope'
import { kmsDriver } from '#tests/helpers/rotation'
import { waitFor } from '#tests/helpers/wait'

/** The run's seed: RELIABILITY_SEED, else a fixed one (CI is repeatable). */
export function reliabilitySeed(fallback = 20261130): number {
  const raw = process.env.RELIABILITY_SEED
  return raw && /^\d+$/.test(raw) ? Number(raw) : fallback
}

/** A positive integer from the environment, else `fallback`. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name]
  return raw && /^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : fallback
}

/** mulberry32: a small seeded PRNG, [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Runs `body`; a failure is rethrown with the seed and how to replay it
 * in front of its message.
 */
export async function withSeed<T>(seed: number, body: () => Promise<T>): Promise<T> {
  try {
    return await body()
  } catch (error) {
    const err = error as Error
    err.message = `[replay with RELIABILITY_SEED=${seed}] ${err.message}`
    throw err
  }
}

/**
 * sha256 of every row's plaintext of a KEK, by id: the DEKs unwrapped by the
 * KMS in batches, each envelope opened with its row's associated data (a row
 * that does not open fails the test).
 */
export async function plaintextDigests(kek: string): Promise<Map<string, string>> {
  const driver = await kmsDriver(kek)
  const digests = new Map<string, string>()
  let after = '0'
  for (;;) {
    const { rows } = await db.rawQuery(
      `SELECT id, wrapped_dek, ciphertext FROM vault_entries
        WHERE kek_name = ? AND id > ? ORDER BY id LIMIT 2000`,
      [kek, after]
    )
    if (rows.length === 0) return digests
    const deks = await driver.unwrap(
      kek,
      rows.map((r: any) => r.wrapped_dek)
    )
    rows.forEach((row: any, i: number) => {
      const id = String(row.id)
      const plaintext = openEnvelope(deks[i], row.ciphertext, entryAad(id, kek))
      digests.set(id, createHash('sha256').update(plaintext).digest('hex'))
    })
    after = String(rows[rows.length - 1].id)
  }
}

/** Ids whose digest differs (or is missing) between two maps; at most 5. */
export function digestDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const diff: string[] = []
  for (const [id, digest] of before) {
    if (after.get(id) !== digest) diff.push(id)
    if (diff.length >= 5) break
  }
  if (after.size !== before.size) diff.push(`size ${before.size} → ${after.size}`)
  return diff
}

/**
 * A row lock held by the test in its own transaction (`SELECT … FOR UPDATE`):
 * a child process writing that row blocks there, so a kill lands exactly
 * in that window. `blocking()` waits until some session waits on it;
 * `release()` rolls back.
 */
export async function holdRowLock(sql: string, bindings: unknown[]) {
  const url = process.env.DATABASE_URL!
  const client = new pg.Client({ connectionString: url, application_name: 'rewrap-test-holder' })
  await client.connect()
  const { rows } = await client.query('SELECT pg_backend_pid() AS pid')
  const pid = Number(rows[0].pid)
  await client.query('BEGIN')
  const { rowCount } = await client.query(sql, bindings)
  if (!rowCount) throw new Error(`holdRowLock: no row (${sql})`)
  return {
    blocking: (timeoutMs = 60_000) => waitBlockedBy(pid, sql, timeoutMs),
    release: async () => {
      await client.query('ROLLBACK').catch(() => {})
      await client.end().catch(() => {})
    },
  }
}

/** Waits until a session waits on a lock the session `pid` holds. */
async function waitBlockedBy(pid: number, what: string, timeoutMs: number) {
  try {
    await waitFor(
      async () => {
        const { rows } = await db.rawQuery(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))`,
          [pid]
        )
        return rows[0].n > 0
      },
      { timeoutMs, what: `a session blocked by the test's lock (${what})` }
    )
  } catch (error) {
    // What the sessions were doing instead.
    const { rows } = await db.rawQuery(
      `SELECT application_name, state, wait_event_type, wait_event, left(query, 120) AS query
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
    )
    ;(error as Error).message += ` — sessions: ${JSON.stringify(rows)}`
    throw error
  }
}
