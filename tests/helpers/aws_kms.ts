/*
|--------------------------------------------------------------------------
| Test helpers: an in-process AWS KMS stand-in and an aws-kms driver for it
|--------------------------------------------------------------------------
*/
import { randomBytes } from 'node:crypto'
import { AwsKmsServer, type AwsKmsServerOptions } from '#kms/aws_server/aws_kms_server'
import { AwsKmsDriver, type AwsKmsDriverOptions } from '#kms/drivers/aws_kms'
import { fastRetryDeps, type RecordingRetryDeps } from '#tests/helpers/transit'

/** A running stand-in with its credentials. */
export interface AwsKmsFixture {
  url: string
  region: string
  credentials: { accessKeyId: string; secretAccessKey: string }
  server: AwsKmsServer
  /** Environment that points the SDK (and a child `node ace`) at it. */
  env: Record<string, string>
  close(): Promise<void>
}

/** Starts the stand-in on a free loopback port with random credentials. */
export async function startAwsKmsServer(
  options: Partial<AwsKmsServerOptions> = {}
): Promise<AwsKmsFixture> {
  const credentials = options.credentials ?? {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  }
  const region = options.region ?? 'eu-west-1'
  const server = new AwsKmsServer({ ...options, credentials, region })
  await server.listen(0, '127.0.0.1')
  return {
    url: server.url,
    region,
    credentials,
    server,
    env: {
      KMS_DRIVER: 'aws-kms',
      AWS_REGION: region,
      AWS_ENDPOINT_URL_KMS: server.url,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    },
    close: () => server.close(),
  }
}

/**
 * An AwsKmsDriver talking to the fixture over real HTTP through
 * @aws-sdk/client-kms, with fast retries unless `retryDeps` is given.
 */
export function awsDriverFor(
  fixture: Pick<AwsKmsFixture, 'url' | 'region' | 'credentials'>,
  options: Partial<AwsKmsDriverOptions> = {}
): { driver: AwsKmsDriver; retryDeps: RecordingRetryDeps } {
  const retryDeps = (options.retryDeps as RecordingRetryDeps | undefined) ?? fastRetryDeps()
  const driver = new AwsKmsDriver({
    region: fixture.region,
    endpoint: fixture.url,
    credentials: fixture.credentials,
    timeoutMs: 10_000,
    concurrency: 8,
    requestsPerSecond: 0,
    retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 200 },
    ...options,
    retryDeps,
  })
  return { driver, retryDeps }
}
