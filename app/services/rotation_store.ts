/*
|--------------------------------------------------------------------------
| Rotation store
|--------------------------------------------------------------------------
|
| The rotation kind's store for the run engine (RunStore): the
| `key_rotations` run rows, the batch source (a keyset scan per stale
| version) and the fenced batch commit — one statement: compare-and-swap
| of every rewrapped row, the failures recorded, the run's cursor,
| counters and heartbeat moved, all atomic, so a crash at any line leaves
| either the whole batch or none of it.
|
| Over 300 lines, kept whole: it is the one store the rotation service and
| the engine are injected with (tests and the bench swap it whole), and
| most of it is SQL text.
|
*/
import db from '@adonisjs/lucid/services/db'
import type { QueryClientContract, TransactionClientContract } from '@adonisjs/lucid/types/database'
import type { AuditApprovals } from '#app/governance/audit_record'
import { E_LOCK_LOST } from '#app/errors'
import type { KmsDriver } from '#kms/contract'
import { CHUNK_ADVANCE_SQL, chunkAdvanceBindings, fenceSql } from '#services/chunk_fence'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import { runAuditEntry, withAuditRecord } from '#services/audit_service'
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
import { pgArray, updateRunRow, UNFINISHED_STATUSES } from '#services/run_rows'

export { pgArray, updateRunRow, UNFINISHED_STATUSES }
export type { CancelledBy }

/** A run row. */
export interface RotationRun {
  id: string
  kekName: string
  status: 'running' | 'completed' | 'completed_with_errors' | 'failed' | 'cancelled'
  baseVersion: number
  targetVersion: number | null
  rotateKek: boolean
  totalRows: number
  rewrapped: number
  skipped: number
  failed: number
  cursorVersion: number
  cursorId: string
  pass: number
  options: Record<string, unknown>
  trigger: 'cli' | 'api' | 'scheduler'
  requestedBy: string | null
  cancelRequested: boolean
  /** Who stopped a `cancelled` run (see `CancelledBy`); null otherwise. */
  cancelledBy: CancelledBy | null
  lastError: string | null
  startedAt: Date
  finishedAt: Date | null
  heartbeatAt: Date
}

/** A stale row read by the scan. */
export interface StaleRow {
  id: string
  wrappedDek: string
}

/** A rotation batch's KMS answers, one per row (rewrapped, or refused with a code). */
export type RewrapResults = Awaited<ReturnType<KmsDriver['rewrap']>>

/** What one batch commit changed. */
export interface BatchCommit {
  updated: number
  cancelRequested: boolean
}

function toRun(row: Record<string, any>): RotationRun {
  return {
    id: String(row.id),
    kekName: row.kek_name,
    status: row.status,
    baseVersion: row.base_version,
    targetVersion: row.target_version,
    rotateKek: row.rotate_kek,
    totalRows: Number(row.total_rows),
    rewrapped: Number(row.rewrapped),
    skipped: Number(row.skipped),
    failed: Number(row.failed),
    cursorVersion: row.cursor_version,
    cursorId: String(row.cursor_id),
    pass: row.pass,
    options: row.options ?? {},
    trigger: row.trigger,
    requestedBy: row.requested_by,
    cancelRequested: row.cancel_requested,
    cancelledBy: row.cancelled_by ?? null,
    lastError: row.last_error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    heartbeatAt: row.heartbeat_at,
  }
}

/**
 * Persistence of rotation runs and the rewrap scan / update.
 */
export class RotationStore implements RunStore<RotationRun, StaleRow, RewrapResults> {
  /**
   * Inserts a new running run.
   */
  async createRun(input: {
    kekName: string
    baseVersion: number
    targetVersion: number | null
    rotateKek: boolean
    options: Record<string, unknown>
    trigger: RotationRun['trigger']
    requestedBy: string | null
    /**
     * The approval gate (app/services/approval_gate.ts): consumes the run's
     * approval in the transaction that inserts the run and its record.
     */
    authorize?: (trx: TransactionClientContract, usedBy: string) => Promise<AuditApprovals | null>
  }): Promise<RotationRun> {
    const insert = (trx: QueryClientContract) =>
      trx.rawQuery(
        `${BACKGROUND_TAG} INSERT INTO key_rotations
         (kek_name, status, base_version, target_version, rotate_kek, options, trigger, requested_by)
       VALUES (?, 'running', ?, ?, ?, ?::jsonb, ?, ?) RETURNING *`,
        [
          input.kekName,
          input.baseVersion,
          input.targetVersion,
          input.rotateKek,
          JSON.stringify(input.options),
          input.trigger,
          input.requestedBy,
        ] as any[]
      )
    // Audit: the run row, its approval being consumed and its `rotation.started` record commit together.
    const started = await withAuditRecord(
      async (trx) => {
        const { rows } = await insert(trx)
        const run = toRun(rows[0])
        return { run, approvals: (await input.authorize?.(trx, `rotation run #${run.id}`)) ?? null }
      },
      ({ run, approvals }) => {
        const entry = runAuditEntry('rotation', run, { status: 'running', created: true })
        return entry && { ...entry, approvals }
      }
    )
    return started.run
  }

  /**
   * A run by id, or null.
   */
  async find(id: string): Promise<RotationRun | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM key_rotations WHERE id = ?`,
      [id]
    )
    return rows[0] ? toRun(rows[0]) : null
  }

  /**
   * Runs by id, in one query (ids that name no run are left out).
   */
  async findMany(ids: string[]): Promise<Map<string, RotationRun>> {
    if (ids.length === 0) return new Map()
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM key_rotations WHERE id = ANY(?::bigint[])`,
      [pgArray(ids)]
    )
    return new Map(rows.map((row: Record<string, any>) => [String(row.id), toRun(row)]))
  }

  /**
   * The newest unfinished run of a KEK, or null.
   */
  async findUnfinished(kekName: string): Promise<RotationRun | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT * FROM key_rotations WHERE kek_name = ? AND status = ANY(?) ORDER BY id DESC LIMIT 1`,
      [kekName, pgArray([...UNFINISHED_STATUSES])]
    )
    return rows[0] ? toRun(rows[0]) : null
  }

  /**
   * Runs, newest first.
   */
  async list(options: { kekName?: string; limit?: number } = {}): Promise<RotationRun[]> {
    const query = db
      .from('key_rotations')
      .orderBy('id', 'desc')
      .limit(options.limit ?? 50)
    if (options.kekName) query.where('kek_name', options.kekName)
    const rows = await query.select('*')
    return rows.map(toRun)
  }

  /**
   * Updates a run's fields (snake_case columns).
   */
  async update(id: string, fields: Record<string, unknown>): Promise<RotationRun> {
    if (!('status' in fields)) return toRun(await updateRunRow('key_rotations', id, fields))
    // Audit: a status change and its record (started, finished, failed, cancelled) commit together.
    return withAuditRecord(
      async (trx) => toRun(await updateRunRow('key_rotations', id, fields, trx)),
      (run) => runAuditEntry('rotation', run, fields)
    )
  }

  /**
   * Asks a run to stop after its current batch.
   */
  async requestCancel(id: string): Promise<boolean> {
    const { rowCount } = await db.rawQuery(
      `${BACKGROUND_TAG} UPDATE key_rotations SET cancel_requested = true, updated_at = now()
        WHERE id = ? AND status = 'running'`,
      [id]
    )
    return rowCount > 0
  }

  /**
   * Rows of a KEK below `target`, per version: the lowest stale version at
   * or above `fromVersion`, or null when none is left.
   */
  async nextStaleVersion(
    kekName: string,
    fromVersion: number,
    target: number
  ): Promise<number | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT min(kek_version) AS v FROM vault_entries
        WHERE kek_name = ? AND kek_version >= ? AND kek_version < ?`,
      [kekName, fromVersion, target]
    )
    return rows[0].v === null ? null : Number(rows[0].v)
  }

  /**
   * Counts rows of a KEK below a version (uses the scan index).
   */
  async countStale(kekName: string, target: number): Promise<number> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT count(*)::bigint AS n FROM vault_entries WHERE kek_name = ? AND kek_version < ?`,
      [kekName, target]
    )
    return Number(rows[0].n)
  }

  /**
   * The next batch of one version, in id order after `afterId` up to
   * `untilId` (keyset).
   */
  async readBatch(
    kekName: string,
    version: number,
    afterId: string,
    limit: number,
    untilId: string | null = null
  ): Promise<StaleRow[]> {
    // A whole run (no upper bound) keeps the statement the fast path always ran.
    const upTo = untilId === null ? '' : ' AND id <= ?'
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT id, wrapped_dek FROM vault_entries
        WHERE kek_name = ? AND kek_version = ? AND id > ?${upTo}
        ORDER BY id LIMIT ?`,
      [kekName, version, afterId, ...(untilId === null ? [] : [untilId]), limit]
    )
    return rows.map((r: any) => ({ id: String(r.id), wrappedDek: r.wrapped_dek }))
  }

  /**
   * Commits one batch atomically: CAS-updates the rewrapped rows (a row
   * whose wrapped_dek changed since it was read is left alone: skipped),
   * records failures and moves the run's cursor and counters — only while
   * the run's lock is held (`fence`), else E_LOCK_LOST and nothing written.
   */
  async commitBatch(input: {
    runId: string
    target: number
    cursorVersion: number
    cursorId: string
    ids: string[]
    oldWrapped: string[]
    newWrapped: string[]
    failedIds: string[]
    failedCodes: string[]
    /**
     * The run's lock (`HeldLock.fence`) or a chunk's lease (distributed runs):
     * nothing is written unless it is still held.
     */
    fence?: CommitFence
  }): Promise<BatchCommit> {
    const chunk = input.fence && isChunkFence(input.fence) ? input.fence : null
    const held = fenceSql(input.fence)
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} WITH held AS (
         ${held.sql}
       ), upd AS (
         UPDATE vault_entries v
            SET wrapped_dek = u.new, kek_version = ?, rotated_at = now()
           FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(id, old, new)
          WHERE v.id = u.id AND v.wrapped_dek = u.old AND EXISTS (SELECT 1 FROM held)
         RETURNING 1
       ), fails AS (
         INSERT INTO key_rotation_failures (rotation_id, entry_id, error_code)
         SELECT ?, f.id, f.code FROM unnest(?::bigint[], ?::text[]) AS f(id, code)
          WHERE EXISTS (SELECT 1 FROM held)
         ON CONFLICT (rotation_id, entry_id) DO UPDATE
           SET attempts = key_rotation_failures.attempts + 1,
               error_code = EXCLUDED.error_code, last_seen_at = now()
         RETURNING 1
       ), n AS (SELECT count(*)::int AS updated FROM upd)${chunk ? `, ${CHUNK_ADVANCE_SQL}` : ''}
       UPDATE key_rotations r
          SET ${chunk ? '' : 'cursor_version = ?, cursor_id = ?,'}
              rewrapped = r.rewrapped + n.updated,
              skipped = r.skipped + (? - n.updated),
              failed = r.failed + ?,
              heartbeat_at = now(), updated_at = now()
         FROM n
        WHERE r.id = ? AND EXISTS (SELECT 1 FROM held)
       RETURNING n.updated, (r.cancel_requested OR r.status <> 'running') AS cancel_requested,
                 (SELECT count(*) FROM fails) AS f`,
      [
        ...held.bindings,
        input.target,
        pgArray(input.ids),
        pgArray(input.oldWrapped),
        pgArray(input.newWrapped),
        input.runId,
        pgArray(input.failedIds),
        pgArray(input.failedCodes),
        ...(chunk
          ? chunkAdvanceBindings(chunk, input.cursorId, input.ids.length, input.failedIds.length)
          : [input.cursorVersion, input.cursorId]),
        input.ids.length,
        input.failedIds.length,
        input.runId,
      ]
    )
    // Fenced out: the lock's session is gone, the chunk was taken over (or the run row is
    // gone): nothing was written.
    if (rows.length === 0) throw new E_LOCK_LOST([])
    return { updated: Number(rows[0].updated), cancelRequested: rows[0].cancel_requested }
  }

  /** Rows still below the run's target. */
  countRemaining(run: RotationRun): Promise<number> {
    return this.countStale(run.kekName, run.targetVersion!)
  }

  /** The run's committed cursor. */
  cursorOf(run: RotationRun): RunCursor {
    return { version: run.cursorVersion, id: run.cursorId }
  }

  /** A new pass starts from the lowest stale version. */
  cursorStartFields(): Record<string, unknown> {
    return { cursor_version: 0, cursor_id: 0 }
  }

  /**
   * The batch source: the next rows after `after`, one stale version at a
   * time (moving to the next stale version when one is exhausted; version
   * 0 = start), in id order within `range`. Null when nothing is left.
   */
  async nextBatch(
    run: RotationRun,
    after: RunCursor,
    range: IdRange,
    limit: number
  ): Promise<SourceBatch<StaleRow> | null> {
    const target = run.targetVersion!
    if (range.version !== undefined) {
      // A chunk: its one version, from its cursor to its end.
      const rows = await this.readBatch(run.kekName, range.version, after.id, limit, range.untilId)
      if (rows.length === 0) return null
      return { rows, cursor: { version: range.version, id: rows[rows.length - 1].id } }
    }
    let version = after.version
    let afterId = after.id
    for (;;) {
      if (version === 0) {
        const next = await this.nextStaleVersion(run.kekName, 0, target)
        if (next === null) return null
        version = next
        afterId = '0'
      }
      const rows = await this.readBatch(run.kekName, version, afterId, limit, range.untilId)
      if (rows.length > 0) return { rows, cursor: { version, id: rows[rows.length - 1].id } }
      const next = await this.nextStaleVersion(run.kekName, version + 1, target)
      if (next === null) return null
      version = next
      afterId = '0'
    }
  }

  /** Commits a rewrapped batch (commitBatch), fenced by the run's lock. */
  async commit(
    run: RotationRun,
    batch: PreparedBatch<StaleRow, RewrapResults>,
    fence: CommitFence
  ): Promise<BatchOutcome> {
    const ids: string[] = []
    const oldWrapped: string[] = []
    const newWrapped: string[] = []
    const failedIds: string[] = []
    const failedCodes: string[] = []
    batch.rows.forEach((row, index) => {
      const result = batch.prepared[index]
      if (result.ok) {
        ids.push(row.id)
        oldWrapped.push(row.wrappedDek)
        newWrapped.push(result.wrapped)
      } else {
        failedIds.push(row.id)
        failedCodes.push(result.code)
      }
    })
    const commit = await this.commitBatch({
      runId: run.id,
      target: run.targetVersion!,
      cursorVersion: batch.cursor.version,
      cursorId: batch.cursor.id,
      ids,
      oldWrapped,
      newWrapped,
      failedIds,
      failedCodes,
      fence,
    })
    return {
      moved: commit.updated,
      skipped: ids.length - commit.updated,
      failed: failedIds.length,
      cancelRequested: commit.cancelRequested,
    }
  }

  /** `run` after a committed batch (the process's copy; the row was updated in SQL). */
  advance(run: RotationRun, cursor: RunCursor, outcome: BatchOutcome): RotationRun {
    return {
      ...run,
      cursorVersion: cursor.version,
      cursorId: cursor.id,
      rewrapped: run.rewrapped + outcome.moved,
      skipped: run.skipped + outcome.skipped,
      failed: run.failed + outcome.failed,
    }
  }

  /** Rows done in all. */
  doneOf(run: RotationRun): number {
    return run.rewrapped + run.skipped + run.failed
  }

  /**
   * Failures recorded for a run.
   */
  async failures(
    runId: string
  ): Promise<Array<{ entryId: string; errorCode: string; attempts: number }>> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT entry_id, error_code, attempts FROM key_rotation_failures WHERE rotation_id = ? ORDER BY entry_id`,
      [runId]
    )
    return rows.map((r: any) => ({
      entryId: String(r.entry_id),
      errorCode: r.error_code,
      attempts: r.attempts,
    }))
  }
}
