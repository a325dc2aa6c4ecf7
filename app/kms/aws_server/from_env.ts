/*
|--------------------------------------------------------------------------
| The AWS KMS stand-in as `kms:serve --api aws-kms` starts it
|--------------------------------------------------------------------------
*/
import { E_KMS_CONFIG } from '#app/errors'
import { AwsKmsServer } from '#kms/aws_server/aws_kms_server'
import { loadState, saveState } from '#kms/aws_server/state_file'
import { decodeRootKey } from '#kms/drivers/local_factory'

/** What the command passes in (from start/env.ts). */
export interface AwsServeEnv {
  accessKeyId?: string
  secretAccessKey?: string
  region?: string
  /** Keys kept in this file, sealed under KMS_ROOT_KEY; in memory when absent. */
  stateFile?: string
  rootKey?: string
  /** Delay added to every answer, ms (`--latency-ms`: benchmarks). */
  latencyMs?: number
  logger?: { info: (msg: string) => void; warn: (msg: string) => void }
}

/**
 * Builds the server; the one access key it accepts comes from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (E_KMS_CONFIG when absent);
 * with a state file, keys saved before are loaded (sealed under KMS_ROOT_KEY).
 */
export function createAwsKmsServer(config: AwsServeEnv): AwsKmsServer {
  if (!config.accessKeyId || !config.secretAccessKey) {
    throw new E_KMS_CONFIG([
      'kms:serve --api aws-kms needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment',
    ])
  }
  const stateFile = config.stateFile
  const rootKey = stateFile ? decodeRootKey(config.rootKey) : undefined
  const server = new AwsKmsServer({
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    region: config.region ?? 'us-east-1',
    logger: config.logger,
    onChange: stateFile && rootKey ? (model) => saveState(model, stateFile, rootKey) : undefined,
  })
  if (stateFile && rootKey) loadState(server.model, stateFile, rootKey)
  if (config.latencyMs) server.setLatency(config.latencyMs)
  return server
}
