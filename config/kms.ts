import env from '#start/env'
import { defineConfig, drivers } from '#kms/define_config'

/**
 * KMS drivers. `local` (keyrings in Postgres, sealed under KMS_ROOT_KEY) is
 * the embedded default; `vault` talks to HashiCorp Vault Transit (or
 * `node ace kms:serve`) through node-vault; `aws-kms` talks to AWS KMS (or
 * `node ace kms:serve --api aws-kms`) through @aws-sdk/client-kms; `azure-keyvault` talks to
 * Azure Key Vault or Managed HSM (or `kms:serve --api azure-keyvault`).
 */
const kmsConfig = defineConfig({
  default: env.get('KMS_DRIVER', 'local'),
  drivers: {
    'local': drivers.local({
      rootKey: env.get('KMS_ROOT_KEY')?.release(),
    }),
    'vault': drivers.vault({
      endpoint: env.get('VAULT_ADDR', 'http://127.0.0.1:8200'),
      token: env.get('VAULT_TOKEN')?.release() ?? '',
      namespace: env.get('VAULT_NAMESPACE'),
      mount: env.get('VAULT_TRANSIT_MOUNT', 'transit'),
      timeoutMs: env.get('VAULT_TIMEOUT_MS', 30_000),
      allowInsecureHttp: env.get('VAULT_ALLOW_INSECURE_HTTP', false),
      batchSize: 1000,
      concurrency: 4,
      retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 5_000 },
    }),
    'azure-keyvault': drivers.azureKeyVault({
      vaultUrl: env.get('AZURE_KEYVAULT_URL'),
      keyType: env.get('AZURE_KEYVAULT_KEY_TYPE', 'RSA'),
      // Half of a vault's 4,000 RSA-2048 operations per 10 s; a rewrap item costs 2.
      requestsPerSecond: env.get('AZURE_KEYVAULT_REQUESTS_PER_SECOND', 200),
      concurrency: env.get('AZURE_KEYVAULT_CONCURRENCY', 8),
      token: env.get('AZURE_KEYVAULT_TOKEN')?.release(),
      disableChallengeResourceVerification: env.get(
        'AZURE_KEYVAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION',
        false
      ),
      retry: { maxAttempts: 8, baseDelayMs: 250, maxDelayMs: 10_000 },
    }),
    'aws-kms': drivers.awsKms({
      region: env.get('AWS_REGION'),
      concurrency: env.get('AWS_KMS_CONCURRENCY', 32),
      requestsPerSecond: env.get('AWS_KMS_REQUESTS_PER_SECOND', 1000),
      pendingWindowInDays: env.get('AWS_KMS_PENDING_WINDOW_DAYS', 30),
    }),
  },
})

export default kmsConfig
