import { BaseSchema } from '@adonisjs/lucid/schema'

/**
 * Keyrings of the local KMS (key material sealed under KMS_ROOT_KEY).
 */
export default class extends BaseSchema {
  protected tableName = 'kms_keys'

  async up() {
    this.schema.createTable(this.tableName, (table) => {
      table.text('name').primary()
      table.jsonb('ring').notNullable()
      table.timestamp('created_at', { useTz: true }).notNullable()
      table.timestamp('updated_at', { useTz: true }).notNullable()
    })
  }

  async down() {
    this.schema.dropTable(this.tableName)
  }
}
