/*
|--------------------------------------------------------------------------
| Commit fences in SQL (shared by the stores of every run kind)
|--------------------------------------------------------------------------
|
| A batch commit writes only while its fence holds, checked by the very
| statement that writes the rows:
|
| - a run's advisory lock: `pg_locks` shows the run's lock session holding
|   it (HELD_BY_SQL);
| - a chunk's lease (distributed runs): the chunk row still carries the
|   worker's fencing token. `FOR UPDATE` makes a concurrent take-over (which
|   bumps the token) either wait for this commit — and then read its cursor —
|   or win first, and then this statement sees the new token and writes
|   nothing (READ COMMITTED re-checks the row's newest version). The same
|   statement moves the chunk's cursor, counters and lease (CHUNK_ADVANCE_SQL).
|
*/
import { HELD_BY_SQL } from '#services/advisory_lock'
import { isChunkFence, type ChunkFence, type CommitFence } from '#services/run_engine'

/** The `held` CTE's body and its bindings for a fence (none: always held). */
export function fenceSql(fence: CommitFence | undefined): { sql: string; bindings: unknown[] } {
  if (!fence) return { sql: 'SELECT 1', bindings: [] }
  if (isChunkFence(fence)) {
    return {
      sql: `SELECT 1 FROM rewrap_chunks
             WHERE id = ? AND lease_token = ? AND status = 'running' FOR UPDATE`,
      bindings: [fence.chunkId, fence.token],
    }
  }
  return { sql: `SELECT 1 WHERE ${HELD_BY_SQL}`, bindings: [fence.pid, fence.key] }
}

/**
 * A CTE (after `held` and `n(updated)`) that moves the fenced chunk's
 * cursor, counters and lease; bindings from `chunkAdvanceBindings`.
 */
export const CHUNK_ADVANCE_SQL = `chunk_advance AS (
  UPDATE rewrap_chunks c
     SET cursor_id = ?, batches = c.batches + 1,
         moved = c.moved + n.updated, skipped = c.skipped + (? - n.updated), failed = c.failed + ?,
         heartbeat_at = now(), lease_until = now() + make_interval(secs => ?::float8 / 1000),
         updated_at = now()
    FROM n
   WHERE c.id = ? AND c.lease_token = ? AND EXISTS (SELECT 1 FROM held)
  RETURNING 1
)`

/** The bindings of CHUNK_ADVANCE_SQL. */
export function chunkAdvanceBindings(
  fence: ChunkFence,
  cursorId: string,
  written: number,
  failed: number
): unknown[] {
  return [cursorId, written, failed, fence.leaseMs, fence.chunkId, fence.token]
}
