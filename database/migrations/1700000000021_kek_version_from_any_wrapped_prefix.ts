import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * The triggers of …002 derive `kek_version` from `wrapped_dek` when a writer
 * does not set it (an insert without it, or an update that changes the DEK
 * but not the version: a PUT, a re-encrypt to v1 of another KEK). They read
 * only `vault:vN:`; other drivers write `<prefix>:vN:…` (`azure:v3:…`), which
 * left the column NULL and the NOT NULL check failing. Read any prefix, as
 * app/crypto/vault_ciphertext.ts does. Function body only: no table lock.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      CREATE OR REPLACE FUNCTION vault_entries_kek_version_from_dek() RETURNS trigger AS $$
      BEGIN
        NEW.kek_version := substring(NEW.wrapped_dek FROM '^[a-z][a-z0-9-]{0,15}:v([0-9]+):')::integer;
        RETURN NEW;
      END
      $$ LANGUAGE plpgsql
    `)
  }

  async down() {
    this.schema.raw(`
      CREATE OR REPLACE FUNCTION vault_entries_kek_version_from_dek() RETURNS trigger AS $$
      BEGIN
        NEW.kek_version := substring(NEW.wrapped_dek FROM '^vault:v([0-9]+):')::integer;
        RETURN NEW;
      END
      $$ LANGUAGE plpgsql
    `)
  }
}
