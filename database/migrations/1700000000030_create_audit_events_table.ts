import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * The signed, hash-chained audit trail (`audit_events`) and the service
 * AID's key event log (`service_key_events`). Both are append-only: a
 * row-level trigger refuses UPDATE and DELETE, a statement-level trigger
 * refuses TRUNCATE. Records and events are kept as TEXT, exactly the
 * bytes that were signed (jsonb would reorder keys and break the SAIDs).
 * A superuser can still bypass the triggers; `audit:verify` and the
 * standalone verifier detect what such an edit changes.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.createTable('audit_events', (table) => {
      table.bigint('seq').notNullable().primary()
      table.text('said').notNullable().unique()
      table.text('prev').notNullable()
      table.text('record').notNullable()
      table.text('signatures').notNullable()
      table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(this.now())
    })
    this.schema.createTable('service_key_events', (table) => {
      table.integer('sn').notNullable().primary()
      table.text('said').notNullable().unique()
      table.text('event').notNullable()
      table.text('signatures').notNullable()
      table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(this.now())
    })
    this.defer(async (db) => {
      await db.rawQuery(`
        CREATE FUNCTION rewrap_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'E_AUDIT_APPEND_ONLY: % on % is refused (append-only)', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
        END $$`)
      for (const table of ['audit_events', 'service_key_events']) {
        await db.rawQuery(
          `CREATE TRIGGER ${table}_no_change BEFORE UPDATE OR DELETE ON ${table}
             FOR EACH ROW EXECUTE FUNCTION rewrap_append_only()`
        )
        await db.rawQuery(
          `CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
             FOR EACH STATEMENT EXECUTE FUNCTION rewrap_append_only()`
        )
      }
    })
  }

  async down() {
    this.schema.dropTable('audit_events')
    this.schema.dropTable('service_key_events')
    this.defer(async (db) => {
      await db.rawQuery('DROP FUNCTION IF EXISTS rewrap_append_only()')
    })
  }
}
