import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * One duty for a distributed run (docs/architecture.md, _Pacing_, several
 * workers of one run): the worker that judges the run's latency budget
 * holds a lease on the run's `run_pacing` row, and every other worker reads
 * the duty from it.
 *
 * - `judge_id`, `judge_until`: who judges, and until when its lease lasts
 *   without a renewal (the database's clock). A worker that finds it past
 *   takes the lease with a compare-and-swap on the row.
 * - `resting_until`: the judge measures the idle baseline; every worker of
 *   the run rests until then.
 * - `baseline_at`: when the baseline was measured (a new judge keeps it,
 *   and measures again once it is `rebaselineMs` old).
 * - `judged_at` may be null: the row of a run whose judge took the lease
 *   and has not judged a window yet (a judged row is what makes another
 *   run's pacer refuse the "before the run" baseline).
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      ALTER TABLE run_pacing
        ADD COLUMN judge_id text,
        ADD COLUMN judge_until timestamptz,
        ADD COLUMN resting_until timestamptz,
        ADD COLUMN baseline_at timestamptz,
        ALTER COLUMN judged_at DROP NOT NULL
    `)
  }

  async down() {
    this.schema.raw(`UPDATE run_pacing SET judged_at = now() WHERE judged_at IS NULL`)
    this.schema.raw(`
      ALTER TABLE run_pacing
        ALTER COLUMN judged_at SET NOT NULL,
        DROP COLUMN baseline_at,
        DROP COLUMN resting_until,
        DROP COLUMN judge_until,
        DROP COLUMN judge_id
    `)
  }
}
