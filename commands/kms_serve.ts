import { BaseCommand, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import logger from '@adonisjs/core/services/logger'
import env from '#start/env'
import { createTransitServer } from '#kms/transit_server/from_app'

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
    'Clients send the token as X-Vault-Token; paths are /v1/<mount>/keys/:name, encrypt/:name, …',
    'Prefer KMS_SERVE_TOKEN over --token: command lines are visible to other local users.',
    '',
    '  {{ binaryName }} kms:serve --port 8200 --mount transit',
    '  KMS_SERVE_TOKEN=… KMS_SERVE_PORT=8200 {{ binaryName }} kms:serve',
  ]

  /** Boots the app (database) and keeps the process alive while serving. */
  static options: CommandOptions = { startApp: true, staysAlive: true }

  /** Port to listen on (env KMS_SERVE_PORT; default 8200). */
  @flags.number({ description: 'Port to listen on (env KMS_SERVE_PORT; default 8200)' })
  declare port?: number

  /** Token clients must present (env KMS_SERVE_TOKEN); required. */
  @flags.string({ description: 'Token clients must send as X-Vault-Token (env KMS_SERVE_TOKEN)' })
  declare token?: string

  /** Transit mount path. */
  @flags.string({ description: 'Mount path of the transit API', default: 'transit' })
  declare mount: string

  /** Interface to bind. */
  @flags.string({ description: 'Interface to bind', default: '127.0.0.1' })
  declare host: string

  /**
   * Starts the server; stops it on SIGINT / SIGTERM.
   */
  async run() {
    const token = this.token || env.get('KMS_SERVE_TOKEN')?.release()
    if (!token) {
      this.logger.error(
        'kms:serve refuses to start without a token: pass --token or set KMS_SERVE_TOKEN'
      )
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

    const server = await createTransitServer(this.app, { token, mount: this.mount, logger })
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

    this.logger.info(`kms:serve listening on ${server.url} (mount "${server.mount}")`)
  }
}
