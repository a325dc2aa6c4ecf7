/*
|--------------------------------------------------------------------------
| Re-encrypt store
|--------------------------------------------------------------------------
|
| The re-encrypt kind's store for the run engine (RunStore): the
| `reencrypt_runs` rows (their CRUD is RunRowStore's, shared with the
| rotation kind), the batch source (an id keyset scan of the source KEK's
| rows) and the fenced batch commit — one statement that moves the rows
| (compare-and-swap on kek_name and wrapped_dek), records the rows that
| could not be moved, and adds to the run's counters, moves its cursor
| and heartbeat; nothing at all unless the run's lock is held.
|
*/
import db from '@adonisjs/lucid/services/db'
import { fenceSql } from '#services/chunk_fence'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import type {
  BatchOutcome,
  CommitFence,
  IdRange,
  PreparedBatch,
  RunCursor,
  RunStore,
  SourceBatch,
} from '#services/run_engine'
import { isChunkFence } from '#services/run_engine'
import {
  RunRowStore,
  type RunAuthorize,
  type RunFailure,
  type RunRowFields,
  type RunTable,
} from '#services/run_row_store'
import { pgArray } from '#services/run_rows'

/** A re-encrypt run row. */
export interface ReencryptRun extends RunRowFields {
  fromKek: string
  toKek: string
  reencrypted: number
}

/** A row of the source KEK, as the scan reads it. */
export interface SourceRow {
  id: string
  wrappedDek: string
  ciphertext: Buffer
}

/** A batch sealed under the target KEK, ready to commit (no secret in it). */
export interface ReencryptedBatch {
  ids: string[]
  oldWrapped: string[]
  newWrapped: string[]
  versions: number[]
  ciphertexts: Buffer[]
  failedIds: string[]
  failedCodes: string[]
}

/** A row a run could not move. */
export type ReencryptFailure = RunFailure

/** Upper bound of a bigint id: the end of an open id range. */
const MAX_ID = '9223372036854775807'

function toRun(row: Record<string, any>): ReencryptRun {
  return {
    id: String(row.id),
    fromKek: row.from_kek,
    toKek: row.to_kek,
    status: row.status,
    totalRows: Number(row.total_rows),
    reencrypted: Number(row.reencrypted),
    skipped: Number(row.skipped),
    failed: Number(row.failed),
    cursorId: String(row.cursor_id),
    pass: row.pass,
    options: row.options ?? {},
    cancelRequested: row.cancel_requested,
    cancelledBy: row.cancelled_by ?? null,
    lastError: row.last_error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    heartbeatAt: row.heartbeat_at,
  }
}

/** The re-encrypt kind's `reencrypt_runs` rows. */
const REENCRYPTS: RunTable<ReencryptRun> = {
  kind: 'reencrypt',
  table: 'reencrypt_runs',
  kekColumn: 'from_kek',
  moved: 'reencrypted',
  cursor: ['cursor_id'],
  failuresTable: 'reencrypt_failures',
  failuresRun: 'run_id',
  failuresLimit: 1000,
  toRun,
}

/**
 * Persistence of re-encrypt runs, their scan and their batch commit.
 */
export class ReencryptStore
  extends RunRowStore<ReencryptRun>
  implements RunStore<ReencryptRun, SourceRow, ReencryptedBatch>
{
  protected readonly runTable = REENCRYPTS

  /**
   * Inserts a new running run; its `reencrypt.started` audit record (and
   * `authorize`: dual control, its approval consumed) commits with it.
   */
  createRun(input: {
    fromKek: string
    toKek: string
    totalRows: number
    options: Record<string, unknown>
    authorize?: RunAuthorize
  }): Promise<ReencryptRun> {
    return this.insertRun(
      {
        from_kek: input.fromKek,
        to_kek: input.toKek,
        total_rows: input.totalRows,
        options: input.options,
      },
      input.authorize
    )
  }

  /** Runs, newest first (`from`: of one source KEK). */
  list(options: { from?: string; limit?: number } = {}): Promise<ReencryptRun[]> {
    return this.listRuns(options.from, options.limit)
  }

  /** Rows still under the source KEK. */
  async countRemaining(run: Pick<ReencryptRun, 'fromKek'>): Promise<number> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT count(*)::bigint AS n FROM vault_entries WHERE kek_name = ?`,
      [run.fromKek]
    )
    return Number(rows[0].n)
  }

  /** The run's committed cursor (one id range: version 0). */
  cursorOf(run: ReencryptRun): RunCursor {
    return { version: 0, id: run.cursorId }
  }

  /** The batch source: the source KEK's rows after `after.id` within `range`, in id order. */
  async nextBatch(
    run: ReencryptRun,
    after: RunCursor,
    range: IdRange,
    limit: number
  ): Promise<SourceBatch<SourceRow> | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT id, wrapped_dek, ciphertext FROM vault_entries
        WHERE kek_name = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?`,
      [run.fromKek, after.id, range.untilId ?? MAX_ID, limit]
    )
    if (rows.length === 0) return null
    const batch = rows.map((r: any) => ({
      id: String(r.id),
      wrappedDek: r.wrapped_dek,
      ciphertext: r.ciphertext,
    }))
    return { rows: batch, cursor: { version: 0, id: batch[batch.length - 1].id } }
  }

  /**
   * Commits a re-encrypted batch: moves the rows still as read (kek_name =
   * from, same wrapped_dek) to the target KEK, records the failures, adds
   * to the counters and moves cursor and heartbeat — only while `fence`
   * holds the run's lock, else E_LOCK_LOST and nothing written.
   */
  async commit(
    run: ReencryptRun,
    batch: PreparedBatch<SourceRow, ReencryptedBatch>,
    fence: CommitFence
  ): Promise<BatchOutcome> {
    const p = batch.prepared
    const chunk = isChunkFence(fence) ? fence : null
    const held = fenceSql(fence)
    const { rows: result } = await db.rawQuery(
      `${BACKGROUND_TAG} WITH held AS (
         ${held.sql}
       ), f AS (
         INSERT INTO reencrypt_failures (run_id, entry_id, error_code)
         SELECT ?, f.id, f.code FROM unnest(?::bigint[], ?::text[]) AS f(id, code)
          WHERE EXISTS (SELECT 1 FROM held)
         ON CONFLICT (run_id, entry_id) DO UPDATE
            SET attempts = reencrypt_failures.attempts + 1,
                error_code = EXCLUDED.error_code, last_seen_at = now()
       ), upd AS (
         UPDATE vault_entries v
            SET kek_name = ?, kek_version = u.v, wrapped_dek = u.new, ciphertext = u.c,
                rotated_at = now()
           FROM unnest(?::bigint[], ?::text[], ?::text[], ?::int[], ?::bytea[])
                AS u(id, old, new, v, c)
          WHERE v.id = u.id AND v.kek_name = ? AND v.wrapped_dek = u.old
            AND EXISTS (SELECT 1 FROM held)
         RETURNING 1
       ), ${this.commitTailSql(chunk)}`,
      [
        ...held.bindings,
        run.id,
        pgArray(p.failedIds),
        pgArray(p.failedCodes),
        run.toKek,
        pgArray(p.ids),
        pgArray(p.oldWrapped),
        pgArray(p.newWrapped),
        pgArray(p.versions),
        pgArray(p.ciphertexts),
        run.fromKek,
        ...this.commitTailBindings(run.id, chunk, batch.cursor, p.ids.length, p.failedIds.length),
      ]
    )
    return this.outcomeOf(this.committed(result), p.ids.length, p.failedIds.length)
  }
}
