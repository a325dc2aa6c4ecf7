import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * `reencrypt_runs` gets what `key_rotations` has, now that both run on one
 * engine: `cancel_requested` (POST /reencrypts/:id/cancel asks the process
 * running it to stop after its current batch), `cancelled_by` (`operator`:
 * Ctrl-C or the API; `shutdown`: SIGTERM) and `heartbeat_at` (moved by every
 * batch commit, so a run whose process died shows how long it has been
 * silent). Constant defaults: no table rewrite on a live table.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      ALTER TABLE reencrypt_runs
        ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false,
        ADD COLUMN cancelled_by text CHECK (cancelled_by IN ('operator', 'shutdown')),
        ADD COLUMN heartbeat_at timestamptz NOT NULL DEFAULT now()
    `)
  }

  async down() {
    this.schema.raw(`
      ALTER TABLE reencrypt_runs
        DROP COLUMN heartbeat_at,
        DROP COLUMN cancelled_by,
        DROP COLUMN cancel_requested
    `)
  }
}
