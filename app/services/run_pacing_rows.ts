/*
|--------------------------------------------------------------------------
| `run_pacing`: a run's pacing state, and its judge's lease
|--------------------------------------------------------------------------
|
| One row per paced run (migrations …051, …053, …054): the duty, the last judged
| foreground p99, the idle baseline (and when it was measured), and, for a
| distributed run, who judges it (`judge_id`) until when (`judge_until`)
| and until when every worker rests (`resting_until`, the judge's baseline
| rest). Every lease decision is one statement compared on the row, timed
| by the database's clock (`now()`), never a worker's: the workers of one
| run may sit on hosts whose clocks differ.
|
*/
import db from '@adonisjs/lucid/services/db'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import type { PacingSink, PacingSnapshot } from '#services/latency_pacer'

/** `ms` in seconds for `make_interval` (null stays null). */
function secondsOf(ms: number | null): number | null {
  return ms === null ? null : ms / 1000
}

/**
 * Upserts the run's `run_pacing` row (a one-process run: no lease, it alone
 * judges); `budgetRatio`: the budget the run is held to.
 */
export function runPacingSink(
  kind: string,
  runId: string,
  budgetRatio: number | null = null
): PacingSink {
  return async (s) => {
    await db.rawQuery(
      `${BACKGROUND_TAG} INSERT INTO run_pacing
         (run_kind, run_id, mode, duty, p99_ms, baseline_p99_ms, budget_ratio, baseline_at,
          judged_at)
       VALUES (?, ?, 'latency-budget', ?, ?, ?, ?,
               now() - make_interval(secs => ?::double precision), now())
       ON CONFLICT (run_kind, run_id) DO UPDATE SET mode = excluded.mode, duty = excluded.duty,
         p99_ms = excluded.p99_ms, baseline_p99_ms = excluded.baseline_p99_ms,
         budget_ratio = excluded.budget_ratio, baseline_at = excluded.baseline_at,
         judged_at = excluded.judged_at`,
      [kind, runId, s.duty, s.p99Ms, s.baselineP99Ms, budgetRatio, secondsOf(s.baselineAgeMs)]
    )
  }
}

/** A run's row as its workers read it (times relative to the database's clock). */
export interface PacingRow {
  duty: number
  /** The judge's id, or null (no judge yet, or it gave the lease up). */
  judgeId: string | null
  /** Until the judge's lease ends, ms (≤ 0: stale, anyone may take it; null: none). */
  judgeLeftMs: number | null
  /** `resting_until` as stored: tells one announced rest from the next (null: none ever). */
  restingUntil: string | null
  /** Until the run's rest ends, ms (0: not resting). */
  restLeftMs: number
  baselineP99Ms: number | null
  /** Age of the baseline, ms (null: none measured). */
  baselineAgeMs: number | null
}

/**
 * The row of one run, as its workers share it. Every method is one
 * statement; the write methods compare the judge on the row.
 */
export interface RunPacingRows {
  /** The row, or null when no worker judged nor claimed yet. */
  read(): Promise<PacingRow | null>
  /**
   * Takes the judge's lease for `leaseMs` when nobody holds it, it is past
   * (`judge_until` ≤ now) or it is already `judgeId`'s; creates the row
   * (at `duty`) when missing. Returns the row when taken, else null.
   */
  claim(judgeId: string, leaseMs: number, duty: number): Promise<PacingRow | null>
  /** Extends `judgeId`'s lease; false when another judge holds it now. */
  renew(judgeId: string, leaseMs: number): Promise<boolean>
  /** Writes a judgement and extends the lease; false when another judge holds it now. */
  judge(judgeId: string, leaseMs: number, snapshot: PacingSnapshot): Promise<boolean>
  /** Every worker rests for `restMs` from now (and the lease is extended); false when not the judge. */
  announceRest(judgeId: string, leaseMs: number, restMs: number): Promise<boolean>
  /** Gives the lease (and a rest in progress) up: the next worker to look takes it. */
  release(judgeId: string): Promise<void>
}

const ROW_COLUMNS = `duty, judge_id, baseline_p99_ms, resting_until::text AS resting_until,
  extract(epoch FROM judge_until - now()) * 1000 AS judge_left_ms,
  greatest(0, coalesce(extract(epoch FROM resting_until - now()) * 1000, 0)) AS rest_left_ms,
  extract(epoch FROM now() - baseline_at) * 1000 AS baseline_age_ms`

function rowOf(r: Record<string, any>): PacingRow {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v))
  return {
    duty: Number(r.duty),
    judgeId: r.judge_id ?? null,
    judgeLeftMs: num(r.judge_left_ms),
    restingUntil: r.resting_until ?? null,
    restLeftMs: Number(r.rest_left_ms ?? 0),
    baselineP99Ms: num(r.baseline_p99_ms),
    baselineAgeMs: num(r.baseline_age_ms),
  }
}

/**
 * The `run_pacing` row of one run in the app's database.
 */
export class DatabasePacingRows implements RunPacingRows {
  constructor(
    private kind: string,
    private runId: string,
    /** The budget the run is held to, kept with each judgement (the run views show it). */
    private budgetRatio: number | null = null
  ) {}

  /** See RunPacingRows.read. */
  async read(): Promise<PacingRow | null> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT ${ROW_COLUMNS} FROM run_pacing WHERE run_kind = ? AND run_id = ?`,
      [this.kind, this.runId]
    )
    return rows[0] ? rowOf(rows[0]) : null
  }

  /** See RunPacingRows.claim. */
  async claim(judgeId: string, leaseMs: number, duty: number): Promise<PacingRow | null> {
    // ON CONFLICT … WHERE is evaluated on the row's newest version under its lock: of two
    // workers claiming at once, the second sees the first's live lease and takes nothing.
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} INSERT INTO run_pacing AS p
         (run_kind, run_id, mode, duty, judge_id, judge_until, judged_at)
       VALUES (?, ?, 'latency-budget', ?, ?, now() + make_interval(secs => ?), NULL)
       ON CONFLICT (run_kind, run_id) DO UPDATE
         SET judge_id = excluded.judge_id, judge_until = excluded.judge_until
         WHERE p.judge_id IS NULL OR p.judge_id = excluded.judge_id
            OR p.judge_until IS NULL OR p.judge_until <= now()
       RETURNING ${ROW_COLUMNS}`,
      [this.kind, this.runId, duty, judgeId, leaseMs / 1000]
    )
    return rows[0] ? rowOf(rows[0]) : null
  }

  /** See RunPacingRows.renew. */
  async renew(judgeId: string, leaseMs: number): Promise<boolean> {
    return this.#asJudge(judgeId, `judge_until = now() + make_interval(secs => ?)`, [
      leaseMs / 1000,
    ])
  }

  /** See RunPacingRows.judge. */
  async judge(judgeId: string, leaseMs: number, s: PacingSnapshot): Promise<boolean> {
    return this.#asJudge(
      judgeId,
      `mode = 'latency-budget', duty = ?, p99_ms = ?, baseline_p99_ms = ?, budget_ratio = ?,
       baseline_at = now() - make_interval(secs => ?::double precision), judged_at = now(),
       judge_until = now() + make_interval(secs => ?)`,
      [
        s.duty,
        s.p99Ms,
        s.baselineP99Ms,
        this.budgetRatio,
        secondsOf(s.baselineAgeMs),
        leaseMs / 1000,
      ]
    )
  }

  /** See RunPacingRows.announceRest. */
  async announceRest(judgeId: string, leaseMs: number, restMs: number): Promise<boolean> {
    return this.#asJudge(
      judgeId,
      `resting_until = now() + make_interval(secs => ?),
       judge_until = now() + make_interval(secs => ?)`,
      [restMs / 1000, leaseMs / 1000]
    )
  }

  /** See RunPacingRows.release. */
  async release(judgeId: string): Promise<void> {
    await this.#asJudge(
      judgeId,
      `judge_until = now(),
       resting_until = CASE WHEN resting_until > now() THEN now() ELSE resting_until END`,
      []
    )
  }

  /** One UPDATE of the row while `judgeId` holds the lease; false when another judge does. */
  async #asJudge(judgeId: string, set: string, bindings: unknown[]): Promise<boolean> {
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} UPDATE run_pacing SET ${set}
        WHERE run_kind = ? AND run_id = ? AND judge_id = ? RETURNING 1 AS ok`,
      [...bindings, this.kind, this.runId, judgeId]
    )
    return rows.length > 0
  }
}
