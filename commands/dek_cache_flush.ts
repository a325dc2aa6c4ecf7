import { inject } from '@adonisjs/core'
import { args, flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { DekCacheInvalidator } from '#services/dek_cache_invalidation'
import { lifecycleKekValidator } from '#validators/lifecycle'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace dek-cache:flush [kek]`: after deleting or revoking a KEK in
 * the KMS (outside the app), so no process keeps serving its cached DEKs.
 */
export default class DekCacheFlush extends RewrapCommand {
  static commandName = 'dek-cache:flush'
  static description =
    'Empty the DEK cache of every app process sharing the database (run it after deleting or revoking a KEK in the KMS)'
  static help = [
    'kek:retire and kek:trim do this themselves. A KEK deleted or disabled in the KMS directly is',
    'not seen by the app: without this, cached DEKs of its rows decrypt until the cache TTL.',
    '',
    '{{ binaryName }} dek-cache:flush orders',
  ]
  static options: CommandOptions = { startApp: true }

  /** The KEK revoked (recorded in the notice and the logs). */
  @args.string({ description: 'KEK name (for the record)', required: false })
  declare kek?: string

  /** Machine output. */
  @flags.boolean({ description: 'Print the result as JSON (one object)' })
  declare json?: boolean

  /**
   * Sends the notice.
   */
  @inject()
  async run(invalidator: DekCacheInvalidator) {
    let kek: string | null = null
    if (this.kek !== undefined) {
      const input = await lifecycleKekValidator.validate({ kek: this.kek })
      kek = input.kek
    }
    await invalidator.revoke({ kek, action: kek ? 'delete' : 'flush' })
    if (this.json) return this.logger.log(JSON.stringify({ flushed: true, kek }))
    this.logger.success('DEK caches of every listening process emptied')
  }
}
