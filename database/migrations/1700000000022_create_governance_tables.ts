import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * Governance: registered AIDs (`approvers`), their key event logs
 * (`key_events`) and role credentials (`credentials`). Signed documents are
 * stored as TEXT, byte for byte as verified: `jsonb` would reorder keys and
 * so break their SAIDs and signatures. No private key is ever stored here:
 * only events, public keys, next-key digests and signatures.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      CREATE TABLE approvers (
        aid text PRIMARY KEY,
        name text NOT NULL,
        authority boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      )
    `)
    this.schema.raw(`
      CREATE TABLE key_events (
        aid text NOT NULL REFERENCES approvers (aid) ON DELETE CASCADE,
        sn integer NOT NULL CHECK (sn >= 0),
        said text NOT NULL,
        event text NOT NULL,
        signatures text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (aid, sn),
        UNIQUE (said)
      )
    `)
    this.schema.raw(`
      CREATE TABLE credentials (
        said text PRIMARY KEY,
        issuer text NOT NULL REFERENCES approvers (aid),
        subject text NOT NULL REFERENCES approvers (aid),
        role text NOT NULL,
        document text NOT NULL,
        signatures text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        revocation text,
        revocation_signatures text,
        CHECK ((revoked_at IS NULL) = (revocation IS NULL)),
        CHECK ((revocation IS NULL) = (revocation_signatures IS NULL))
      )
    `)
    this.schema.raw(`CREATE INDEX credentials_subject_idx ON credentials (subject)`)
  }

  async down() {
    this.schema.raw(`DROP TABLE credentials`)
    this.schema.raw(`DROP TABLE key_events`)
    this.schema.raw(`DROP TABLE approvers`)
  }
}
