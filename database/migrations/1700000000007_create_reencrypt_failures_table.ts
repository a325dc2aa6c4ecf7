import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * `reencrypt_failures`: rows a `reencrypt` run could not move (the KMS
 * refused to unwrap the DEK, or the payload did not authenticate), with the
 * error code (never the data). Written in the same statement as the batch's
 * UPDATE and counters; the next run retries them.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      CREATE TABLE reencrypt_failures (
        run_id bigint NOT NULL REFERENCES reencrypt_runs (id) ON DELETE CASCADE,
        entry_id bigint NOT NULL,
        error_code text NOT NULL,
        attempts integer NOT NULL DEFAULT 1,
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, entry_id)
      )
    `)
  }

  async down() {
    this.schema.raw(`DROP TABLE reencrypt_failures`)
  }
}
