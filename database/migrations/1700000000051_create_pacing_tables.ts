import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * Pacing by a latency budget (docs/architecture.md, _Pacing_):
 *
 * - `foreground_latencies`: every HTTP server writes, once per flush
 *   interval with traffic, the durations (ms) of the requests it served
 *   in it. UNLOGGED (no WAL; emptied by a crash, which only costs the
 *   pacing one window) and pruned by its writers after a few minutes.
 * - `run_pacing`: the pacing state of a running run (its duty, the last
 *   judged foreground p99, the idle baseline), one row per run, written
 *   by the process that paces it after each judgement: what /metrics
 *   shows, and the seam through which several workers of one run share
 *   one duty.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      CREATE UNLOGGED TABLE foreground_latencies (
        id bigserial PRIMARY KEY,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        source text NOT NULL,
        samples real[] NOT NULL
      )
    `)
    this.schema.raw(`
      CREATE TABLE run_pacing (
        run_kind text NOT NULL CHECK (run_kind IN ('rotation', 're-encrypt')),
        run_id bigint NOT NULL,
        mode text NOT NULL,
        duty double precision NOT NULL,
        p99_ms double precision,
        baseline_p99_ms double precision,
        judged_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_kind, run_id)
      )
    `)
  }

  async down() {
    this.schema.raw('DROP TABLE run_pacing')
    this.schema.raw('DROP TABLE foreground_latencies')
  }
}
