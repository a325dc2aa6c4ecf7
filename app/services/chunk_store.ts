/*
|--------------------------------------------------------------------------
| Chunk store (distributed runs)
|--------------------------------------------------------------------------
|
| `rewrap_chunks`: a run pass cut into chunks — a stale version and an id
| range (`from_id`, `until_id`] with its own cursor and counters — and each
| chunk's lease. Taking a chunk bumps its fencing token (`lease_token`);
| every batch commit checks the token in its own statement
| (app/services/chunk_fence.ts), so a worker whose chunk was taken over
| writes nothing more.
|
*/
import db from '@adonisjs/lucid/services/db'
import { BACKGROUND_TAG } from '#services/foreground_detector'

/** The run kinds that can be distributed. */
export type ChunkRunKind = 'rotation' | 'reencrypt'

/** A chunk row. */
export interface Chunk {
  id: string
  runKind: ChunkRunKind
  runId: string
  pass: number
  chunkNo: number
  staleVersion: number
  fromId: string
  untilId: string | null
  cursorId: string
  status: 'pending' | 'running' | 'done'
  workerId: string | null
  leaseToken: string
  leaseUntil: Date | null
  batches: number
  moved: number
  skipped: number
  failed: number
}

/** A chunk to create: a version and an id range (`fromId`, `untilId`]. */
export interface ChunkRange {
  staleVersion: number
  fromId: string
  untilId: string | null
}

/** Chunk counts of a run (status, per worker, stalled). */
export interface ChunkStats {
  pending: number
  running: number
  done: number
  /** Running chunks whose lease expired (their worker stopped committing). */
  stalled: number
  /** Rows each worker moved, skipped or failed in this run (chunks it holds or finished). */
  workers: Array<{ workerId: string; chunks: number; rows: number; running: number }>
}

function toChunk(row: Record<string, any>): Chunk {
  return {
    id: String(row.id),
    runKind: row.run_kind,
    runId: String(row.run_id),
    pass: row.pass,
    chunkNo: row.chunk_no,
    staleVersion: row.stale_version,
    fromId: String(row.from_id),
    untilId: row.until_id === null ? null : String(row.until_id),
    cursorId: String(row.cursor_id),
    status: row.status,
    workerId: row.worker_id,
    leaseToken: String(row.lease_token),
    leaseUntil: row.lease_until,
    batches: row.batches,
    moved: Number(row.moved),
    skipped: Number(row.skipped),
    failed: Number(row.failed),
  }
}

/**
 * Cuts `ids` (a sorted id population of `rows` rows) into about
 * `rows / chunkRows` ranges at its percentiles: the ids at i/k of the way.
 */
export async function percentileBounds(
  where: string,
  bindings: unknown[],
  rows: number,
  chunkRows: number
): Promise<string[]> {
  const k = Math.ceil(rows / chunkRows)
  if (k <= 1) return []
  const fractions = Array.from({ length: k - 1 }, (_, i) => (i + 1) / k)
  const { rows: result } = await db.rawQuery(
    `${BACKGROUND_TAG} SELECT percentile_disc(?::float8[]) WITHIN GROUP (ORDER BY id) AS bounds
       FROM vault_entries WHERE ${where}`,
    [`{${fractions.join(',')}}`, ...bindings]
  )
  const bounds: string[] = (result[0].bounds ?? []).map(String)
  return [...new Set(bounds)]
}

/** Ranges (`from`, `until`] between consecutive bounds; the last one open-ended. */
export function rangesFrom(staleVersion: number, bounds: string[]): ChunkRange[] {
  const edges = ['0', ...bounds]
  return edges.map((fromId, i) => ({
    staleVersion,
    fromId,
    untilId: i + 1 < edges.length ? edges[i + 1] : null,
  }))
}

/**
 * Persistence of chunks.
 */
export class ChunkStore {
  /** Inserts the chunks of one pass of a run (pending); returns them. */
  async create(
    kind: ChunkRunKind,
    runId: string,
    pass: number,
    ranges: ChunkRange[]
  ): Promise<Chunk[]> {
    if (ranges.length === 0) return []
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} INSERT INTO rewrap_chunks
         (run_kind, run_id, pass, chunk_no, stale_version, from_id, until_id, cursor_id)
       SELECT ?, ?, ?, r.n, r.v, r.f, r.u, r.f
         FROM unnest(?::int[], ?::int[], ?::bigint[], ?::bigint[]) AS r(n, v, f, u)
       RETURNING *`,
      [
        kind,
        runId,
        pass,
        `{${ranges.map((_, i) => i + 1).join(',')}}`,
        `{${ranges.map((r) => r.staleVersion).join(',')}}`,
        `{${ranges.map((r) => r.fromId).join(',')}}`,
        `{${ranges.map((r) => r.untilId ?? 'NULL').join(',')}}`,
      ]
    )
    return rows.map(toChunk)
  }

  /** A chunk by id, or null. */
  async find(id: string): Promise<Chunk | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM rewrap_chunks WHERE id = ?`,
      [id]
    )
    return rows[0] ? toChunk(rows[0]) : null
  }

  /**
   * Takes a chunk for `workerId` when it is pending or its lease expired:
   * a new fencing token, a lease of `leaseMs`. Null when it is done or
   * another worker's lease is still live.
   */
  async take(id: string, workerId: string, leaseMs: number): Promise<Chunk | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} UPDATE rewrap_chunks
          SET status = 'running', worker_id = ?, lease_token = lease_token + 1,
              lease_until = now() + make_interval(secs => ?::float8 / 1000),
              heartbeat_at = now(), updated_at = now()
        WHERE id = ? AND (status = 'pending' OR (status = 'running' AND lease_until < now()))
       RETURNING *`,
      [workerId, leaseMs, id]
    )
    return rows[0] ? toChunk(rows[0]) : null
  }

  /** Gives a chunk back (pending, no lease) unless it was taken over meanwhile. */
  async release(chunk: Chunk): Promise<void> {
    await db.rawQuery(
      `${BACKGROUND_TAG} UPDATE rewrap_chunks
          SET status = 'pending', lease_until = null, updated_at = now()
        WHERE id = ? AND lease_token = ? AND status = 'running'`,
      [chunk.id, chunk.leaseToken]
    )
  }

  /** Marks a chunk done (its range is moved) unless it was taken over meanwhile. */
  async finish(chunk: Chunk): Promise<boolean> {
    const { rowCount } = await db.rawQuery(
      `${BACKGROUND_TAG} UPDATE rewrap_chunks
          SET status = 'done', lease_until = null, updated_at = now()
        WHERE id = ? AND lease_token = ? AND status = 'running'`,
      [chunk.id, chunk.leaseToken]
    )
    return rowCount > 0
  }

  /** Chunks of one pass of a run: how many are not done, and the rows they failed. */
  async passState(
    kind: ChunkRunKind,
    runId: string,
    pass: number
  ): Promise<{ chunks: number; open: number; live: number; failed: number }> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT count(*)::int AS chunks,
              count(*) FILTER (WHERE status <> 'done')::int AS open,
              count(*) FILTER (WHERE status = 'running' AND lease_until >= now())::int AS live,
              coalesce(sum(failed), 0)::bigint AS failed
         FROM rewrap_chunks WHERE run_kind = ? AND run_id = ? AND pass = ?`,
      [kind, runId, pass]
    )
    return {
      chunks: rows[0].chunks,
      open: rows[0].open,
      live: rows[0].live,
      failed: Number(rows[0].failed),
    }
  }

  /** Chunks of a run held under a live lease now (to share the run's rows/s budget). */
  async liveCount(kind: ChunkRunKind, runId: string): Promise<number> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT count(*)::int AS n FROM rewrap_chunks
        WHERE run_kind = ? AND run_id = ? AND status = 'running' AND lease_until >= now()`,
      [kind, runId]
    )
    return rows[0].n
  }

  /** Chunk counts by status, stalled chunks and rows per worker, per run id. */
  async stats(kind: ChunkRunKind, runIds: string[]): Promise<Map<string, ChunkStats>> {
    const result = new Map<string, ChunkStats>()
    if (runIds.length === 0) return result
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT run_id, status, worker_id,
              (status = 'running' AND lease_until < now()) AS stalled,
              count(*)::int AS chunks, sum(moved + skipped + failed)::bigint AS rows
         FROM rewrap_chunks WHERE run_kind = ? AND run_id = ANY(?::bigint[])
        GROUP BY 1, 2, 3, 4`,
      [kind, `{${runIds.join(',')}}`]
    )
    for (const row of rows) {
      const runId = String(row.run_id)
      const stats = result.get(runId) ?? {
        pending: 0,
        running: 0,
        done: 0,
        stalled: 0,
        workers: [],
      }
      stats[row.status as 'pending' | 'running' | 'done'] += row.chunks
      if (row.stalled) stats.stalled += row.chunks
      if (row.worker_id) {
        let worker = stats.workers.find((w) => w.workerId === row.worker_id)
        if (!worker) {
          worker = { workerId: row.worker_id, chunks: 0, rows: 0, running: 0 }
          stats.workers.push(worker)
        }
        worker.chunks += row.chunks
        worker.rows += Number(row.rows)
        if (row.status === 'running' && !row.stalled) worker.running += row.chunks
      }
      result.set(runId, stats)
    }
    return result
  }
}
