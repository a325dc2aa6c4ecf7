import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * The console's sign-ins, held on the server (docs/console.md, _Sessions_):
 * one row per signed-in browser, keyed by the SHA-256 of a random handle
 * that only the browser's encrypted session cookie carries. Sign-out
 * deletes the row, so no copy of the cookie (nor a live poll's late
 * answer, which sends the cookie it was given back) signs in again.
 * Revoking the token deletes its sign-ins with it. No token, secret or
 * handle is stored: a reader of this table cannot sign in.
 */
export default class extends BaseSchema {
  async up() {
    this.schema.raw(`
      CREATE TABLE console_sign_ins (
        handle_hash bytea PRIMARY KEY CHECK (length(handle_hash) = 32),
        token_id integer NOT NULL REFERENCES auth_access_tokens(id) ON DELETE CASCADE,
        signed_in_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )
    `)
    this.schema.raw('CREATE INDEX console_sign_ins_expires_at ON console_sign_ins (expires_at)')
    this.schema.raw('CREATE INDEX console_sign_ins_token_id ON console_sign_ins (token_id)')
  }

  async down() {
    this.schema.raw('DROP TABLE console_sign_ins')
  }
}
