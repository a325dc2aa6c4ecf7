import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * `key_rotations.cancelled_by`: who stopped a `cancelled` run. `operator`
 * (POST /rotations/:id/cancel, Ctrl-C of `rotate:kek`) keeps it paused until
 * someone resumes it; `shutdown` (SIGTERM, a lost lock) is resumed by the
 * scheduler's next tick. Null for runs that were not cancelled.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      ALTER TABLE key_rotations
        ADD COLUMN cancelled_by text CHECK (cancelled_by IN ('operator', 'shutdown'))
    `)
  }

  async down() {
    this.schema.raw(`ALTER TABLE key_rotations DROP COLUMN cancelled_by`)
  }
}
