import { BaseCommand, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import logger from '@adonisjs/core/services/logger'
import env from '#start/env'
import { createTransitServer } from '#kms/transit_server/from_app'
import { resolveServeToken } from '#kms/transit_server/serve_token'
import { createAzureStandIn } from '#kms/azure_server/serve'
import { createAwsKmsServer } from '#kms/aws_server/from_env'

/** --latency-ms at most (a minute: beyond, clients time out anyway). */
const MAX_LATENCY_MS = 60_000

/**
 * Serves the local KMS over a Vault Transit-compatible HTTP API, so that
 * any Vault client (and Rewrap's own `vault` driver) can use it.
 */
export default class KmsServe extends BaseCommand {
  /** Command name. */
  static commandName = 'kms:serve'

  /** One line for `node ace list`. */
  static description = 'Serve the local KMS over a Vault Transit-compatible HTTP API'

  /** Longer help for `node ace kms:serve --help`. */
  static help = [
    "Keyrings live in the kms_keys table, sealed under KMS_ROOT_KEY (the local driver's store).",
    'Clients send the token as X-Vault-Token (or Authorization: Bearer); paths are',
    '/v1/<mount>/keys/:name, encrypt/:name, … The token (at least 24 characters) comes from',
    'KMS_SERVE_TOKEN or --token-file, never the command line (visible to other local users).',
    'batch_input is capped at 10,000 items; 20 failed token checks in 60 s lock an address out for 60 s.',
    '',
    '  KMS_SERVE_TOKEN=… {{ binaryName }} kms:serve --port 8200 --mount transit',
    '  {{ binaryName }} kms:serve --token-file /etc/rewrap/kms-serve.token',
    '',
    '--api azure-keyvault serves the Azure Key Vault keys REST API instead (HTTPS with --tls-cert',
    'and --tls-key; the token is the bearer token clients present after the 401 challenge; keys in',
    'memory, for tests and local development):',
    '  {{ binaryName }} kms:serve --api azure-keyvault --tls-cert cert.pem --tls-key key.pem',
    '',
    '--api aws-kms serves the AWS KMS JSON 1.1 protocol instead (X-Amz-Target: TrentService.*),',
    'SigV4-verified against AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, region AWS_REGION;',
    'point the SDK at it with AWS_ENDPOINT_URL_KMS. Keys live in memory, or with --state-file <path>',
    'in that file, sealed under KMS_ROOT_KEY.',
    '',
    '  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… {{ binaryName }} kms:serve --api aws-kms --port 4599',
    '',
    '--latency-ms N (every --api) delays every answer by N ms, as a remote KMS round trip would:',
    "`npm run bench` measures the drivers' concurrency and the workers of one run against it.",
  ]

  /** Boots the app (database) and keeps the process alive while serving. */
  static options: CommandOptions = { startApp: true, staysAlive: true }

  /** Port to listen on (env KMS_SERVE_PORT; default 8200). */
  @flags.number({ description: 'Port to listen on (env KMS_SERVE_PORT; default 8200)' })
  declare port?: number

  /** Refused (argv is visible in `ps`): kept so that its use gets a clear error. */
  @flags.string({ description: 'Refused: use KMS_SERVE_TOKEN or --token-file' })
  declare token?: string

  /** File holding the token (first line); else env KMS_SERVE_TOKEN. */
  @flags.string({ description: 'File holding the token (else env KMS_SERVE_TOKEN)' })
  declare tokenFile?: string

  /** Transit mount path. */
  @flags.string({ description: 'Mount path of the transit API', default: 'transit' })
  declare mount: string

  /** Wire protocol to serve. */
  @flags.string({
    description: 'API to serve: vault (Transit, default), aws-kms or azure-keyvault',
    default: 'vault',
  })
  declare api: string

  /** PEM certificate (chain) of the HTTPS listener (azure-keyvault). */
  @flags.string({ description: 'PEM certificate file (--api azure-keyvault)' })
  declare tlsCert?: string

  /** PEM private key of the HTTPS listener (azure-keyvault). */
  @flags.string({ description: 'PEM private key file (--api azure-keyvault)' })
  declare tlsKey?: string

  /** aws-kms only: keep keys in this file (sealed under KMS_ROOT_KEY) instead of memory. */
  @flags.string({ description: 'aws-kms: keep keys in this file, sealed under KMS_ROOT_KEY' })
  declare stateFile?: string

  /** Delay added to every answer (benchmarks), any --api. */
  @flags.number({
    description: 'Delay every answer by this many ms, any --api (benchmarks)',
  })
  declare latencyMs?: number

  /** Interface to bind. */
  @flags.string({ description: 'Interface to bind', default: '127.0.0.1' })
  declare host: string

  /**
   * Starts the server; stops it on SIGINT / SIGTERM.
   */
  async run() {
    if (this.api !== 'vault' && this.api !== 'aws-kms' && this.api !== 'azure-keyvault') {
      return this.#fail(
        `E_KMS_CONFIG: --api must be vault, aws-kms or azure-keyvault (got "${this.api}")`
      )
    }
    const latency = this.latencyMs
    if (latency !== undefined) {
      if (!Number.isInteger(latency) || latency < 0 || latency > MAX_LATENCY_MS) {
        return this.#fail(
          `E_KMS_CONFIG: --latency-ms must be an integer from 0 to ${MAX_LATENCY_MS}`
        )
      }
    }
    if (this.api === 'aws-kms') return this.#serveAws()
    let token: string
    try {
      const resolved = resolveServeToken({
        argvToken: this.token,
        tokenFile: this.tokenFile,
        envToken: env.get('KMS_SERVE_TOKEN')?.release(),
      })
      token = resolved.token
      for (const warning of resolved.warnings) this.logger.warning(warning)
    } catch (error) {
      const { code, message } = error as { code?: string; message: string }
      this.logger.error(`${code ?? 'E_KMS_CONFIG'}: ${message}`)
      this.exitCode = 1
      await this.app.terminate()
      return
    }
    const port = this.port ?? env.get('KMS_SERVE_PORT') ?? 8200
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      this.logger.error('kms:serve: --port must be an integer between 0 and 65535')
      this.exitCode = 1
      await this.app.terminate()
      return
    }

    let server: {
      url: string
      listen(port: number, host: string): Promise<unknown>
      close(): Promise<void>
    }
    try {
      server =
        this.api === 'azure-keyvault'
          ? await createAzureStandIn({
              token,
              tlsCertFile: this.tlsCert,
              tlsKeyFile: this.tlsKey,
              latencyMs: this.latencyMs,
              logger,
            })
          : await createTransitServer(this.app, {
              token,
              mount: this.mount,
              latencyMs: this.latencyMs,
              logger,
            })
    } catch (error) {
      const { code, message } = error as { code?: string; message: string }
      this.logger.error(`${code ?? 'E_KMS_CONFIG'}: ${message}`)
      this.exitCode = 1
      await this.app.terminate()
      return
    }
    try {
      await server.listen(port, this.host)
    } catch (error) {
      this.logger.error(
        `kms:serve could not listen on ${this.host}:${port}: ${(error as any).code}`
      )
      this.exitCode = 1
      await this.app.terminate()
      return
    }

    this.app.terminating(async () => {
      await server.close()
      this.logger.info('kms:serve stopped')
    })
    const stop = () => void this.app.terminate()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)

    this.logger.info(
      this.api === 'azure-keyvault'
        ? `kms:serve listening on ${server.url} (Azure Key Vault keys API${this.#latencyNote()})`
        : `kms:serve listening on ${server.url} (mount "${this.mount}"${this.#latencyNote()})`
    )
  }

  /** `--api aws-kms`: the AWS KMS stand-in (app/kms/aws_server). */
  async #serveAws() {
    let server: ReturnType<typeof createAwsKmsServer>
    try {
      server = createAwsKmsServer({
        accessKeyId: env.get('AWS_ACCESS_KEY_ID'),
        secretAccessKey: env.get('AWS_SECRET_ACCESS_KEY')?.release(),
        region: env.get('AWS_REGION'),
        stateFile: this.stateFile,
        rootKey: env.get('KMS_ROOT_KEY')?.release(),
        latencyMs: this.latencyMs,
        logger,
      })
    } catch (error) {
      const { code, message } = error as { code?: string; message: string }
      return this.#fail(`${code ?? 'E_KMS_CONFIG'}: ${message}`)
    }
    const port = this.port ?? env.get('KMS_SERVE_PORT') ?? 8200
    try {
      await server.listen(port, this.host)
    } catch (error) {
      return this.#fail(
        `kms:serve could not listen on ${this.host}:${port}: ${(error as any).code}`
      )
    }
    this.app.terminating(() => server.close())
    const stop = () => void this.app.terminate()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    this.logger.info(
      `kms:serve (aws-kms) listening on ${server.url} (region ${server.region}${this.#latencyNote()})`
    )
  }

  #latencyNote() {
    return this.latencyMs ? `, ${this.latencyMs} ms added to every answer` : ''
  }

  async #fail(line: string) {
    this.logger.error(line)
    this.exitCode = 1
    await this.app.terminate()
  }
}
