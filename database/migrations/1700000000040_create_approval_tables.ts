import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * Dual control: approval requests (`approval_requests`, addressed by the
 * SAID of their document) and the approvers' signatures over them
 * (`approval_signatures`). Documents and signature groups are TEXT, byte
 * for byte as signed (jsonb would reorder keys and break the SAIDs).
 *
 * Append-only where it matters: a request's document, action, KEK and
 * expiry never change and a request is never deleted; the only update
 * allowed is consuming it once (`used_at`/`used_by` from NULL to a value).
 * Signatures are never updated or deleted (the trigger function of
 * migration 1700000000030). No private key or passphrase is stored here:
 * only public documents and signatures.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      CREATE TABLE approval_requests (
        said text PRIMARY KEY,
        action text NOT NULL,
        kek text NOT NULL,
        document text NOT NULL,
        requester text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        used_by text,
        CHECK ((used_at IS NULL) = (used_by IS NULL))
      )
    `)
    this.schema.raw(`CREATE INDEX approval_requests_open_idx ON approval_requests (expires_at)
      WHERE used_at IS NULL`)
    this.schema.raw(`
      CREATE TABLE approval_signatures (
        request_said text NOT NULL REFERENCES approval_requests (said),
        signer text NOT NULL REFERENCES approvers (aid),
        sn integer NOT NULL CHECK (sn >= 0),
        signature text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (request_said, signer)
      )
    `)
    this.defer(async (db) => {
      await db.rawQuery(`
        CREATE FUNCTION rewrap_approval_consume_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND OLD.used_at IS NULL AND NEW.used_at IS NOT NULL
             AND NEW.said = OLD.said AND NEW.action = OLD.action AND NEW.kek = OLD.kek
             AND NEW.document = OLD.document AND NEW.requester = OLD.requester
             AND NEW.created_at = OLD.created_at AND NEW.expires_at = OLD.expires_at THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'E_AUDIT_APPEND_ONLY: % on % is refused (requests are only consumed once)',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$`)
      await db.rawQuery(`CREATE TRIGGER approval_requests_consume_only
        BEFORE UPDATE OR DELETE ON approval_requests
        FOR EACH ROW EXECUTE FUNCTION rewrap_approval_consume_only()`)
      await db.rawQuery(`CREATE TRIGGER approval_requests_no_truncate
        BEFORE TRUNCATE ON approval_requests
        FOR EACH STATEMENT EXECUTE FUNCTION rewrap_append_only()`)
      await db.rawQuery(`CREATE TRIGGER approval_signatures_no_change
        BEFORE UPDATE OR DELETE ON approval_signatures
        FOR EACH ROW EXECUTE FUNCTION rewrap_append_only()`)
      await db.rawQuery(`CREATE TRIGGER approval_signatures_no_truncate
        BEFORE TRUNCATE ON approval_signatures
        FOR EACH STATEMENT EXECUTE FUNCTION rewrap_append_only()`)
    })
  }

  async down() {
    this.schema.raw(`DROP TABLE approval_signatures`)
    this.schema.raw(`DROP TABLE approval_requests`)
    this.schema.raw(`DROP FUNCTION IF EXISTS rewrap_approval_consume_only()`)
  }
}
