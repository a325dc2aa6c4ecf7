import { BaseSchema } from '@adonisjs/lucid/schema'
import { QueueSchemaService } from '@adonisjs/queue'

/**
 * Distributed runs (docs/architecture.md "Chunks on many workers"):
 *
 * - `rewrap_chunks`: one row per chunk of a run pass — a stale version and an
 *   id range (`from_id`, `until_id`] (`until_id` null = to the end of the
 *   table), its own cursor and counters, its status and its lease. The lease
 *   is a fencing token (`lease_token`, +1 at every take) that every batch
 *   commit checks in the statement that writes the rows, so a worker whose
 *   chunk was taken over writes nothing more.
 * - `queue_jobs` / `queue_schedules`: the job engine's tables
 *   (`@adonisjs/queue` database adapter), created by its own schema service.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      CREATE TABLE rewrap_chunks (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_kind text NOT NULL CHECK (run_kind IN ('rotation', 'reencrypt')),
        run_id bigint NOT NULL,
        pass int NOT NULL,
        chunk_no int NOT NULL,
        stale_version int NOT NULL,
        from_id bigint NOT NULL,
        until_id bigint,
        cursor_id bigint NOT NULL,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done')),
        worker_id text,
        lease_token bigint NOT NULL DEFAULT 0,
        lease_until timestamptz,
        heartbeat_at timestamptz,
        batches int NOT NULL DEFAULT 0,
        moved bigint NOT NULL DEFAULT 0,
        skipped bigint NOT NULL DEFAULT 0,
        failed bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (run_kind, run_id, pass, chunk_no)
      )
    `)
    this.schema.raw(`CREATE INDEX rewrap_chunks_run ON rewrap_chunks (run_kind, run_id, status)`)
    this.defer(async (client) => {
      const schema = new QueueSchemaService(client.getWriteClient())
      await schema.createJobsTable()
      await schema.createSchedulesTable()
    })
  }

  async down() {
    this.defer(async (client) => {
      const schema = new QueueSchemaService(client.getWriteClient())
      await schema.dropSchedulesTable()
      await schema.dropJobsTable()
    })
    this.schema.raw(`DROP TABLE rewrap_chunks`)
  }
}
