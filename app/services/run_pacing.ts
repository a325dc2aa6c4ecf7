/*
|--------------------------------------------------------------------------
| Run pacing (read side)
|--------------------------------------------------------------------------
|
| Why a running run goes at the speed it does, as the run views and
| /metrics show it: its row of `run_pacing` (upserted by the process that
| paces it after each judgement, run_pacing_rows.ts). Only
| `running` runs are asked for: a finished run's row is history, not its
| pacing; a row a distributed run's judge has claimed but not judged yet
| holds only the starting duty, and is not shown either. One query for all
| the runs of a response (no query per run).
|
*/
import db from '@adonisjs/lucid/services/db'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import type { RunRowFields } from '#services/run_row_store'

/** The `run_kind` of a `run_pacing` row (the run engine's kind label). */
export type PacedRunKind = 'rotation' | 're-encrypt'

/** A running run's last pacing judgement, as the API shows it. */
export interface RunPacingView {
  /** How the run is paced: `latency-budget`. */
  mode: string
  /** Share of wall time the run may work (1 = full speed). */
  duty: number
  /** Foreground request p99 of the last judged window, ms (null: no traffic in it). */
  foregroundP99Ms: number | null
  /** The idle foreground p99 the budget is relative to, ms (null until measured). */
  baselineP99Ms: number | null
  /** The budget: foreground p99 ≤ budgetRatio × baseline (null in rows from before it was kept). */
  budgetRatio: number | null
  /** When the run was last judged (ISO 8601). */
  judgedAt: string
}

/** A running re-encrypt run's pacing (/metrics). */
export interface ReencryptPacing {
  runId: string
  fromKek: string
  toKek: string
  pacing: RunPacingView
}

function numberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value)
}

function toView(row: Record<string, any>): RunPacingView {
  return {
    mode: row.mode,
    duty: Number(row.duty),
    foregroundP99Ms: numberOrNull(row.p99_ms),
    baselineP99Ms: numberOrNull(row.baseline_p99_ms),
    budgetRatio: numberOrNull(row.budget_ratio),
    judgedAt: new Date(row.judged_at).toISOString(),
  }
}

/**
 * Reads `run_pacing` for the run views and /metrics.
 */
export class RunPacingStore {
  /** The pacing of `runs`' `running` runs that have a row, by run id (one query). */
  async forRuns(
    kind: PacedRunKind,
    runs: Pick<RunRowFields, 'id' | 'status'>[]
  ): Promise<Map<string, RunPacingView>> {
    const result = new Map<string, RunPacingView>()
    const ids = runs.filter((run) => run.status === 'running').map((run) => run.id)
    if (ids.length === 0) return result
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT run_id::text AS run_id, mode, duty, p99_ms, baseline_p99_ms,
              budget_ratio, judged_at
         FROM run_pacing
        WHERE run_kind = ? AND run_id = ANY(?::bigint[]) AND judged_at IS NOT NULL`,
      [kind, `{${ids.join(',')}}`]
    )
    for (const row of rows) result.set(row.run_id, toView(row))
    return result
  }

  /** Every running re-encrypt run that has a pacing row, with its KEKs (one query). */
  async runningReencrypts(): Promise<ReencryptPacing[]> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT r.id::text AS run_id, r.from_kek, r.to_kek, p.mode, p.duty,
              p.p99_ms, p.baseline_p99_ms, p.budget_ratio, p.judged_at
         FROM run_pacing p JOIN reencrypt_runs r ON p.run_kind = 're-encrypt' AND r.id = p.run_id
                        AND p.judged_at IS NOT NULL
        WHERE r.status = 'running' ORDER BY r.id`
    )
    return rows.map((row: Record<string, any>) => ({
      runId: row.run_id,
      fromKek: row.from_kek,
      toKek: row.to_kek,
      pacing: toView(row),
    }))
  }
}
