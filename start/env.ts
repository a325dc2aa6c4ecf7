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
  /** The embedded server's superuser password (generated into .env by `npm start`). */
  EMBEDDED_PG_PASSWORD: Env.schema.secret.optional(),

  /**
   * KMS
   */
  KMS_DRIVER: Env.schema.enum.optional(['local', 'vault', 'aws-kms', 'azure-keyvault'] as const),
  KMS_ROOT_KEY: Env.schema.secret.optional(),
  VAULT_ADDR: Env.schema.string.optional(),
  VAULT_TOKEN: Env.schema.secret.optional(),
  VAULT_NAMESPACE: Env.schema.string.optional(),
  VAULT_TRANSIT_MOUNT: Env.schema.string.optional(),
  VAULT_TIMEOUT_MS: Env.schema.number.optional(),
  /** Accept a plain http:// VAULT_ADDR on a non-loopback host (default: refused). */
  VAULT_ALLOW_INSECURE_HTTP: Env.schema.boolean.optional(),
  /**
   * aws-kms driver. Region, endpoint (AWS_ENDPOINT_URL_KMS) and credentials
   * are the SDK's own variables; the SDK reads them itself.
   */
  AWS_REGION: Env.schema.string.optional(),
  AWS_ENDPOINT_URL_KMS: Env.schema.string.optional(),
  /** The one access key `kms:serve --api aws-kms` accepts (the SDK reads its own copy). */
  AWS_ACCESS_KEY_ID: Env.schema.string.optional(),
  AWS_SECRET_ACCESS_KEY: Env.schema.secret.optional(),
  AWS_KMS_CONCURRENCY: Env.schema.number.optional(),
  AWS_KMS_REQUESTS_PER_SECOND: Env.schema.number.optional(),
  AWS_KMS_PENDING_WINDOW_DAYS: Env.schema.number.optional(),

  /**
   * azure-keyvault driver: the vault (or Managed HSM) URL; credentials from
   * DefaultAzureCredential (AZURE_CLIENT_ID, workload / managed identity, az
   * login…). AZURE_KEYVAULT_TOKEN (a static bearer token) and the challenge
   * resource check switch are for the local stand-in only.
   */
  AZURE_KEYVAULT_URL: Env.schema.string.optional(),
  AZURE_KEYVAULT_KEY_TYPE: Env.schema.enum.optional(['RSA', 'RSA-HSM', 'oct-HSM'] as const),
  AZURE_KEYVAULT_REQUESTS_PER_SECOND: Env.schema.number.optional(),
  AZURE_KEYVAULT_CONCURRENCY: Env.schema.number.optional(),
  AZURE_KEYVAULT_TOKEN: Env.schema.secret.optional(),
  AZURE_KEYVAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: Env.schema.boolean.optional(),

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
   * Dual control (config/governance.ts `dualControl`): `off` lets master-key
   * acts run without approvals — development only; default `on`.
   */
  DUAL_CONTROL: Env.schema.enum.optional(['on', 'off'] as const),
  /**
   * Governance: the passphrase of an approver keystore for the approver and
   * credential commands (else they prompt, hidden). Never logged.
   */
  REWRAP_KEYSTORE_PASSPHRASE: Env.schema.secret.optional(),
  /**
   * Audit trail: the root seed of the service's signing AID (base64url of
   * 32 bytes; generated into .env by `npm start`; never logged).
   */
  AUDIT_SIGNING_SEED: Env.schema.secret.optional(),
  /**
   * How long a rotation rides through a database outage before it stops
   * with E_DATABASE_UNAVAILABLE (config/rewrap.ts `rotation.databaseOutageMs`).
   */
  REWRAP_DATABASE_OUTAGE_MS: Env.schema.number.optional(),
  /**
   * Distributed runs: how long a chunk's lease lasts without a commit, and
   * after how long the job engine puts back the job of a silent worker
   * (config/queue.ts, config/rewrap.ts `distributed.leaseMs`). Default 30 s.
   */
  REWRAP_WORKER_LEASE_MS: Env.schema.number.optional(),
  /**
   * OS priority (nice, 0 to 19) that rotate:kek, reencrypt, rewrap:worker and
   * scheduler:run take (config/rewrap.ts `rotation.cpuNice`). Default 19.
   */
  REWRAP_CPU_NICE: Env.schema.number.optional(),
})
