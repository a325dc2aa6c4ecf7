/*
|--------------------------------------------------------------------------
| Re-encrypt store
|--------------------------------------------------------------------------
|
| The re-encrypt kind's store for the run engine (RunStore): the
| `reencrypt_runs` rows, the batch source (an id keyset scan of the source
| KEK's rows) and the fenced batch commit — one statement that moves the
| rows (compare-and-swap on kek_name and wrapped_dek), records the rows
| that could not be moved, and adds to the run's counters, moves its
| cursor and heartbeat; nothing at all unless the run's lock is held.
|
*/
import db from '@adonisjs/lucid/services/db'
import type { QueryClientContract, TransactionClientContract } from '@adonisjs/lucid/types/database'
import type { AuditApprovals } from '#app/governance/audit_record'
import { E_LOCK_LOST } from '#app/errors'
import { CHUNK_ADVANCE_SQL, chunkAdvanceBindings, fenceSql } from '#services/chunk_fence'
import { runAuditEntry, withAuditRecord } from '#services/audit_service'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import type {
  BatchOutcome,
  CancelledBy,
  CommitFence,
  IdRange,
  PreparedBatch,
  RunCursor,
  RunStore,
  SourceBatch,
} from '#services/run_engine'
import { isChunkFence } from '#services/run_engine'
import { pgArray, UNFINISHED_STATUSES, updateRunRow } from '#services/run_rows'

/** A re-encrypt run row. */
export interface ReencryptRun {
  id: string
  fromKek: string
  toKek: string
  status: 'running' | 'completed' | 'completed_with_errors' | 'failed' | 'cancelled'
  totalRows: number
  reencrypted: number
  skipped: number
  failed: number
  cursorId: string
  pass: number
  options: Record<string, unknown>
  cancelRequested: boolean
  /** Who stopped a `cancelled` run; null otherwise. */
  cancelledBy: CancelledBy | null
  lastError: string | null
  startedAt: Date
  finishedAt: Date | null
  /** Moved by every batch commit: how long a `running` run has been silent. */
  heartbeatAt: Date
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
export interface ReencryptFailure {
  entryId: string
  errorCode: string
  /** Batches that met it in this run (a later pass retries it). */
  attempts: number
}

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

/**
 * Persistence of re-encrypt runs, their scan and their batch commit.
 */
export class ReencryptStore implements RunStore<ReencryptRun, SourceRow, ReencryptedBatch> {
  /**
   * Inserts a new running run; its `reencrypt.started` audit record commits with it.
   */
  async createRun(input: {
    fromKek: string
    toKek: string
    totalRows: number
    options: Record<string, unknown>
    /**
     * Dual control: consumes the run's approval in the transaction that
     * inserts the run and its record.
     */
    authorize?: (trx: TransactionClientContract, usedBy: string) => Promise<AuditApprovals | null>
  }): Promise<ReencryptRun> {
    // Audit: the run row, its approval being consumed and its `reencrypt.started` record commit together.
    const started = await withAuditRecord(
      async (trx) => {
        const { rows } = await trx.rawQuery(
          `${BACKGROUND_TAG} INSERT INTO reencrypt_runs (from_kek, to_kek, status, total_rows, options)
           VALUES (?, ?, 'running', ?, ?::jsonb) RETURNING *`,
          [input.fromKek, input.toKek, input.totalRows, JSON.stringify(input.options)]
        )
        const run = toRun(rows[0])
        return {
          run,
          approvals: (await input.authorize?.(trx, `reencrypt run #${run.id}`)) ?? null,
        }
      },
      ({ run, approvals }) => {
        const entry = runAuditEntry('reencrypt', run, { status: 'running', created: true })
        return entry && { ...entry, approvals }
      }
    )
    return started.run
  }

  /** A run by id, or null. */
  async find(id: string): Promise<ReencryptRun | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM reencrypt_runs WHERE id = ?`,
      [id]
    )
    return rows[0] ? toRun(rows[0]) : null
  }

  /** The newest unfinished run of a source KEK, or null. */
  async findUnfinished(from: string): Promise<ReencryptRun | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM reencrypt_runs WHERE from_kek = ? AND status = ANY(?)
        ORDER BY id DESC LIMIT 1`,
      [from, pgArray([...UNFINISHED_STATUSES])]
    )
    return rows[0] ? toRun(rows[0]) : null
  }

  /** Runs, newest first (`from`: of one source KEK). */
  async list(options: { from?: string; limit?: number } = {}): Promise<ReencryptRun[]> {
    const query = db
      .from('reencrypt_runs')
      .orderBy('id', 'desc')
      .limit(options.limit ?? 50)
    if (options.from) query.where('from_kek', options.from)
    const rows = await query.select('*')
    return rows.map(toRun)
  }

  /** Sets columns; a status change and its audit record commit together. */
  async update(id: string, fields: Record<string, unknown>): Promise<ReencryptRun> {
    if (!('status' in fields)) return toRun(await updateRunRow('reencrypt_runs', id, fields))
    return withAuditRecord(
      async (trx: QueryClientContract) =>
        toRun(await updateRunRow('reencrypt_runs', id, fields, trx)),
      (run) => runAuditEntry('reencrypt', run, fields)
    )
  }

  /** Asks a running run to stop after its current batch (read by its next commit). */
  async requestCancel(id: string): Promise<boolean> {
    const { rowCount } = await db.rawQuery(
      `${BACKGROUND_TAG} UPDATE reencrypt_runs SET cancel_requested = true, updated_at = now()
        WHERE id = ? AND status = 'running'`,
      [id]
    )
    return rowCount > 0
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

  /** A new pass starts from the first id. */
  cursorStartFields(): Record<string, unknown> {
    return { cursor_id: 0 }
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
       ), n AS (SELECT count(*)::int AS updated FROM upd)${chunk ? `, ${CHUNK_ADVANCE_SQL}` : ''}
       UPDATE reencrypt_runs r
          SET ${chunk ? '' : 'cursor_id = ?,'} reencrypted = r.reencrypted + n.updated,
              skipped = r.skipped + (? - n.updated), failed = r.failed + ?,
              heartbeat_at = now(), updated_at = now()
         FROM n
        WHERE r.id = ? AND EXISTS (SELECT 1 FROM held)
       RETURNING n.updated, (r.cancel_requested OR r.status <> 'running') AS cancel_requested`,
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
        ...(chunk
          ? chunkAdvanceBindings(chunk, batch.cursor.id, p.ids.length, p.failedIds.length)
          : [batch.cursor.id]),
        p.ids.length,
        p.failedIds.length,
        run.id,
      ]
    )
    // Fenced out: the lock's session is gone or the chunk was taken over; nothing was written.
    if (result.length === 0) throw new E_LOCK_LOST([])
    const updated = Number(result[0].updated)
    return {
      moved: updated,
      skipped: p.ids.length - updated,
      failed: p.failedIds.length,
      cancelRequested: result[0].cancel_requested,
    }
  }

  /** `run` after a committed batch (the process's copy; the row was updated in SQL). */
  advance(run: ReencryptRun, cursor: RunCursor, outcome: BatchOutcome): ReencryptRun {
    return {
      ...run,
      cursorId: cursor.id,
      reencrypted: run.reencrypted + outcome.moved,
      skipped: run.skipped + outcome.skipped,
      failed: run.failed + outcome.failed,
    }
  }

  /** Rows done in all. */
  doneOf(run: ReencryptRun): number {
    return run.reencrypted + run.skipped + run.failed
  }

  /** Rows a run could not move, by entry id (at most `limit`). */
  async failures(runId: string, limit = 1000): Promise<ReencryptFailure[]> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT entry_id, error_code, attempts FROM reencrypt_failures
        WHERE run_id = ? ORDER BY entry_id LIMIT ?`,
      [runId, limit]
    )
    return rows.map((r: any) => ({
      entryId: String(r.entry_id),
      errorCode: r.error_code,
      attempts: r.attempts,
    }))
  }
}
