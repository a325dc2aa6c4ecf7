/*
|--------------------------------------------------------------------------
| Run row store
|--------------------------------------------------------------------------
|
| The run-row half of a run kind's store, shared by the rotation and the
| re-encrypt stores: creating a run (with its approval and `<kind>.started`
| record), reading runs, setting their columns (a status change audited
| with it), the cancel request, the failures read, and the run row's part
| of a batch commit — cursor, counters and heartbeat in SQL, and the
| process's copy of it. Parameterised by the kind's table and column
| mapping (`RunTable`); each kind's store adds its scan and its batch
| commit.
|
*/
import db from '@adonisjs/lucid/services/db'
import type { TransactionClientContract } from '@adonisjs/lucid/types/database'
import type { AuditApprovals } from '#app/governance/audit_record'
import { E_LOCK_LOST } from '#app/errors'
import { CHUNK_ADVANCE_SQL, chunkAdvanceBindings } from '#services/chunk_fence'
import { runAuditEntry, withAuditRecord } from '#services/audit_service'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import type { BatchOutcome, CancelledBy, ChunkFence, RunCursor } from '#services/run_engine'
import { pgArray, UNFINISHED_STATUSES, updateRunRow } from '#services/run_rows'

/** The fields every run kind's row has. */
export interface RunRowFields {
  id: string
  status: 'running' | 'completed' | 'completed_with_errors' | 'failed' | 'cancelled'
  totalRows: number
  skipped: number
  failed: number
  cursorId: string
  pass: number
  options: Record<string, unknown>
  cancelRequested: boolean
  /** Who stopped a `cancelled` run (see `CancelledBy`); null otherwise. */
  cancelledBy: CancelledBy | null
  lastError: string | null
  startedAt: Date
  finishedAt: Date | null
  /** Moved by every batch commit: how long a `running` run has been silent. */
  heartbeatAt: Date
}

/** A row a run could not move. */
export interface RunFailure {
  entryId: string
  errorCode: string
  /** Batches that met it in this run (a later pass retries it). */
  attempts: number
}

/**
 * The approval gate (app/services/approval_gate.ts): consumes a run's
 * approval in the transaction that inserts the run and its record.
 */
export type RunAuthorize = (
  trx: TransactionClientContract,
  usedBy: string
) => Promise<AuditApprovals | null>

/** What one batch commit changed in the run row. */
export interface BatchCommit {
  updated: number
  cancelRequested: boolean
}

/** A run kind's table and column mapping (names from code, never from input). */
export interface RunTable<Run> {
  /** The kind of its audit records (`rotation.started`, …) and approvals' `usedBy`. */
  kind: 'rotation' | 'reencrypt'
  table: 'key_rotations' | 'reencrypt_runs'
  /** The column of the KEK a run is locked on (`findUnfinished`, `list`). */
  kekColumn: 'kek_name' | 'from_kek'
  /** The counter of moved rows: its column, and its field in `Run`. */
  moved: 'rewrapped' | 'reencrypted'
  /** The cursor's columns: each binds the cursor's `version` or `id`. */
  cursor: Array<'cursor_version' | 'cursor_id'>
  failuresTable: 'key_rotation_failures' | 'reencrypt_failures'
  /** The column of `failuresTable` naming the run. */
  failuresRun: 'rotation_id' | 'run_id'
  /** The most failures `failures` answers by default; null: all. */
  failuresLimit: number | null
  /** A row as the kind's run. */
  toRun(row: Record<string, any>): Run
}

/**
 * Persistence of one run kind's rows; its store (a subclass) names the
 * kind in `runTable` and adds the kind's scan and batch commit.
 */
export abstract class RunRowStore<Run extends RunRowFields> {
  /** The kind's table and column mapping. */
  protected abstract readonly runTable: RunTable<Run>

  /**
   * Inserts a new running run (`columns`: the kind's; `options` goes in
   * as JSON). The run row, its approval being consumed (`authorize`) and
   * its `<kind>.started` record commit together.
   */
  protected async insertRun(
    columns: Record<string, unknown>,
    authorize?: RunAuthorize
  ): Promise<Run> {
    const { kind, table, toRun } = this.runTable
    const names = Object.keys(columns)
    const values = names.map((name) =>
      name === 'options' ? JSON.stringify(columns[name]) : columns[name]
    )
    const slots = names.map((name) => (name === 'options' ? '?::jsonb' : '?'))
    const started = await withAuditRecord(
      async (trx) => {
        const { rows } = await trx.rawQuery(
          `${BACKGROUND_TAG} INSERT INTO ${table} (status, ${names.join(', ')})
           VALUES ('running', ${slots.join(', ')}) RETURNING *`,
          values as any[]
        )
        const run = toRun(rows[0])
        return { run, approvals: (await authorize?.(trx, `${kind} run #${run.id}`)) ?? null }
      },
      ({ run, approvals }) => {
        const entry = runAuditEntry(kind, run, { status: 'running', created: true })
        return entry && { ...entry, approvals }
      }
    )
    return started.run
  }

  /** A run by id, or null. */
  async find(id: string): Promise<Run | null> {
    const { table, toRun } = this.runTable
    const { rows } = await db.rawQuery(`${BACKGROUND_TAG} SELECT * FROM ${table} WHERE id = ?`, [
      id,
    ])
    return rows[0] ? toRun(rows[0]) : null
  }

  /** Runs by id, in one query (ids that name no run are left out). */
  async findMany(ids: string[]): Promise<Map<string, Run>> {
    if (ids.length === 0) return new Map()
    const { table, toRun } = this.runTable
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM ${table} WHERE id = ANY(?::bigint[])`,
      [pgArray(ids)]
    )
    return new Map(rows.map((row: Record<string, any>) => [String(row.id), toRun(row)]))
  }

  /** The newest unfinished run of a KEK (the source KEK of a re-encrypt), or null. */
  async findUnfinished(kekName: string): Promise<Run | null> {
    const { table, kekColumn, toRun } = this.runTable
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM ${table} WHERE ${kekColumn} = ? AND status = ANY(?)
        ORDER BY id DESC LIMIT 1`,
      [kekName, pgArray([...UNFINISHED_STATUSES])]
    )
    return rows[0] ? toRun(rows[0]) : null
  }

  /** Runs, newest first (`kekName`: of one KEK, the source KEK of a re-encrypt). */
  protected async listRuns(kekName: string | undefined, limit: number | undefined): Promise<Run[]> {
    const { table, kekColumn, toRun } = this.runTable
    const query = db
      .from(table)
      .orderBy('id', 'desc')
      .limit(limit ?? 50)
    if (kekName) query.where(kekColumn, kekName)
    const rows = await query.select('*')
    return rows.map(toRun)
  }

  /** Sets columns (snake_case, from code); a status change and its audit record commit together. */
  async update(id: string, fields: Record<string, unknown>): Promise<Run> {
    const { kind, table, toRun } = this.runTable
    if (!('status' in fields)) return toRun(await updateRunRow(table, id, fields))
    // Audit: a status change and its record (started, finished, failed, cancelled) commit together.
    return withAuditRecord(
      async (trx) => toRun(await updateRunRow(table, id, fields, trx)),
      (run) => runAuditEntry(kind, run, fields)
    )
  }

  /** Asks a running run to stop after its current batch (read by its next commit). */
  async requestCancel(id: string): Promise<boolean> {
    const { rowCount } = await db.rawQuery(
      `${BACKGROUND_TAG} UPDATE ${this.runTable.table} SET cancel_requested = true, updated_at = now()
        WHERE id = ? AND status = 'running'`,
      [id]
    )
    return rowCount > 0
  }

  /** Rows a run could not move, by entry id (at most `limit`; null: all). */
  async failures(
    runId: string,
    limit: number | null = this.runTable.failuresLimit
  ): Promise<RunFailure[]> {
    const { failuresTable, failuresRun } = this.runTable
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT entry_id, error_code, attempts FROM ${failuresTable}
        WHERE ${failuresRun} = ? ORDER BY entry_id${limit === null ? '' : ' LIMIT ?'}`,
      limit === null ? [runId] : [runId, limit]
    )
    return rows.map((r: any) => ({
      entryId: String(r.entry_id),
      errorCode: r.error_code,
      attempts: r.attempts,
    }))
  }

  /** A new pass starts the cursor from the start. */
  cursorStartFields(): Record<string, unknown> {
    return Object.fromEntries(this.runTable.cursor.map((column) => [column, 0]))
  }

  /**
   * The end of a batch commit statement, after the `held` CTE and the
   * kind's CTEs up to `upd` (the moved rows): `n(updated)`, the fenced
   * chunk's advance (`chunk`: a chunk's lease) and the run row's cursor,
   * counters and heartbeat — only while held. Answers `updated` and
   * `cancel_requested` (and `returning`). Bindings: `commitTailBindings`.
   */
  protected commitTailSql(chunk: ChunkFence | null, returning = ''): string {
    const { table, moved, cursor } = this.runTable
    const cursorSet = chunk ? '' : cursor.map((column) => `${column} = ?,`).join(' ')
    return `n AS (SELECT count(*)::int AS updated FROM upd)${chunk ? `, ${CHUNK_ADVANCE_SQL}` : ''}
       UPDATE ${table} r
          SET ${cursorSet} ${moved} = r.${moved} + n.updated,
              skipped = r.skipped + (? - n.updated), failed = r.failed + ?,
              heartbeat_at = now(), updated_at = now()
         FROM n
        WHERE r.id = ? AND EXISTS (SELECT 1 FROM held)
       RETURNING n.updated, (r.cancel_requested OR r.status <> 'running') AS cancel_requested${returning}`
  }

  /** The bindings of `commitTailSql`: `written` rows to move, `failed` refused. */
  protected commitTailBindings(
    runId: string,
    chunk: ChunkFence | null,
    cursor: RunCursor,
    written: number,
    failed: number
  ): unknown[] {
    const cursorValues = this.runTable.cursor.map((column) =>
      column === 'cursor_version' ? cursor.version : cursor.id
    )
    return [
      ...(chunk ? chunkAdvanceBindings(chunk, cursor.id, written, failed) : cursorValues),
      written,
      failed,
      runId,
    ]
  }

  /**
   * What a commit statement ending in `commitTailSql` answered. Fenced out
   * (the lock's session is gone, the chunk was taken over, or the run row
   * is gone): nothing was written, E_LOCK_LOST.
   */
  protected committed(rows: Array<Record<string, any>>): BatchCommit {
    if (rows.length === 0) throw new E_LOCK_LOST([])
    return { updated: Number(rows[0].updated), cancelRequested: rows[0].cancel_requested }
  }

  /** The engine's outcome of a commit that wrote `written` rows (some skipped) and `failed` failures. */
  protected outcomeOf(commit: BatchCommit, written: number, failed: number): BatchOutcome {
    return {
      moved: commit.updated,
      skipped: written - commit.updated,
      failed,
      cancelRequested: commit.cancelRequested,
    }
  }

  /** `run` after a committed batch (the process's copy; the row was updated in SQL). */
  advance(run: Run, cursor: RunCursor, outcome: BatchOutcome): Run {
    const moved = this.runTable.moved
    return {
      ...run,
      cursorId: cursor.id,
      [moved]: this.movedOf(run) + outcome.moved,
      skipped: run.skipped + outcome.skipped,
      failed: run.failed + outcome.failed,
    }
  }

  /** Rows done in all (moved + skipped + failed). */
  doneOf(run: Run): number {
    return this.movedOf(run) + run.skipped + run.failed
  }

  /** The run's moved-rows counter. */
  private movedOf(run: Run): number {
    return (run as unknown as Record<string, number>)[this.runTable.moved]
  }
}
