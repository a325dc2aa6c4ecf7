import env from '#start/env'
import { defineConfig } from '@adonisjs/lucid'

/**
 * The embedded Postgres `npm start` runs when DATABASE_URL is unset.
 */
export const embeddedDatabaseUrl = `postgres://postgres:rewrap@127.0.0.1:${env.get('EMBEDDED_PG_PORT', 54329)}/rewrap`

const dbConfig = defineConfig({
  connection: 'postgres',
  prettyPrintDebugQueries: false,
  connections: {
    postgres: {
      client: 'pg',
      connection: {
        connectionString: env.get('DATABASE_URL') ?? embeddedDatabaseUrl,
      },
      pool: { min: 0, max: 10 },
      migrations: {
        naturalSort: true,
        paths: ['database/migrations'],
      },
    },
  },
})

export default dbConfig
