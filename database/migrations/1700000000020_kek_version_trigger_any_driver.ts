import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * The `kek_version` triggers of migration …002 derive the version from a
 * `vault:vN:` prefix only. Other drivers write their own scheme (`aws:vN:`),
 * so the function now reads any `<scheme>:vN:` prefix (the rule of
 * app/crypto/wrapped_dek.ts). Same triggers, same WHEN clauses; only the
 * function body changes (CREATE OR REPLACE: no lock on vault_entries).
 */
const ANY_SCHEME = '^[a-z][a-z0-9-]{0,15}:v([1-9][0-9]{0,8}):'
const VAULT_ONLY = '^vault:v([0-9]+):'

function triggerFunction(pattern: string) {
  return `
    CREATE OR REPLACE FUNCTION vault_entries_kek_version_from_dek() RETURNS trigger AS $$
    BEGIN
      NEW.kek_version := substring(NEW.wrapped_dek FROM '${pattern}')::integer;
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql
  `
}

export default class extends BaseSchema {
  async up() {
    this.schema.raw(triggerFunction(ANY_SCHEME))
  }

  async down() {
    this.schema.raw(triggerFunction(VAULT_ONLY))
  }
}
