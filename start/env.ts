/*
|--------------------------------------------------------------------------
| Environment variables
|--------------------------------------------------------------------------
|
| Validated at boot. DATABASE_URL absent means the embedded Postgres that
| `npm start` runs (see bin/quickstart.ts); KMS_DRIVER absent means the
| built-in `local` KMS.
|
*/
import { Env } from '@adonisjs/core/env'
import { cronExpression, kekNameList } from '#validators/env_rules'

export default await Env.create(new URL('../', import.meta.url), {
  NODE_ENV: Env.schema.enum(['development', 'production', 'test'] as const),
  PORT: Env.schema.number.optional(),
  HOST: Env.schema.string.optional({ format: 'host' }),
  LOG_LEVEL: Env.schema.enum.optional([
    'fatal',
    'error',
    'warn',
    'info',
    'debug',
    'trace',
    'silent',
  ] as const),
  LOG_FILE: Env.schema.string.optional(),
  APP_KEY: Env.schema.secret(),

  /**
   * Database. A postgres:// URL; absent → the embedded server on
   * EMBEDDED_PG_PORT (default 54329), database `rewrap`.
   */
  DATABASE_URL: Env.schema.string.optional(),
  EMBEDDED_PG_PORT: Env.schema.number.optional(),

  /**
   * KMS
   */
  KMS_DRIVER: Env.schema.enum.optional(['local', 'vault'] as const),
  KMS_ROOT_KEY: Env.schema.secret.optional(),
  VAULT_ADDR: Env.schema.string.optional(),
  VAULT_TOKEN: Env.schema.secret.optional(),
  VAULT_NAMESPACE: Env.schema.string.optional(),
  VAULT_TRANSIT_MOUNT: Env.schema.string.optional(),
  VAULT_TIMEOUT_MS: Env.schema.number.optional(),
  /** Accept a plain http:// VAULT_ADDR on a non-loopback host (default: refused). */
  VAULT_ALLOW_INSECURE_HTTP: Env.schema.boolean.optional(),

  /**
   * kms:serve (the Vault Transit-compatible server)
   */
  KMS_SERVE_PORT: Env.schema.number.optional(),
  KMS_SERVE_TOKEN: Env.schema.secret.optional(),

  /**
   * Key lifecycle (config/rewrap.ts `lifecycle`): extra managed KEKs,
   * comma-separated, with the default periods; the scheduler task's cron.
   */
  REWRAP_MANAGED_KEKS: kekNameList,
  REWRAP_SCHEDULE: cronExpression,

  /**
   * How long a rotation rides through a database outage before it stops
   * with E_DATABASE_UNAVAILABLE (config/rewrap.ts `rotation.databaseOutageMs`).
   */
  REWRAP_DATABASE_OUTAGE_MS: Env.schema.number.optional(),
})
