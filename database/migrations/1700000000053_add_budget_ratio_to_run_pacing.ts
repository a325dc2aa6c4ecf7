import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * The latency budget a paced run is held to (`p99 ≤ ratio × baseline`),
 * written with each judgement next to the duty: the ratio the pacer
 * really uses (a resumed run's `--latency-budget` is not stored in its
 * options), shown by the run views as `pacing.budgetRatio`. Null in rows
 * written before this column.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw('ALTER TABLE run_pacing ADD COLUMN budget_ratio double precision')
  }

  async down() {
    this.schema.raw('ALTER TABLE run_pacing DROP COLUMN budget_ratio')
  }
}
