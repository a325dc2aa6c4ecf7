import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { AuditService } from '#services/audit_service'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace audit:rotate-key [--json]`
 */
export default class AuditRotateKey extends RewrapCommand {
  static commandName = 'audit:rotate-key'
  static description =
    "Rotate the service's audit signing AID to its pre-committed next key (recorded in the chain)"
  static help = [
    'The next key is derived from AUDIT_SIGNING_SEED (docs/auditing.md); records signed before stay verifiable.',
    '{{ binaryName }} audit:rotate-key',
  ]
  static options: CommandOptions = { startApp: true }

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print { aid, sn } as JSON' })
  declare json?: boolean

  /**
   * Rotates and records the rotation.
   */
  @inject()
  async run(audit: AuditService) {
    const rotated = await audit.rotateKey(process.env.USER ?? 'cli')
    if (this.json) this.logger.log(JSON.stringify(rotated))
    else this.logger.success(`Service AID ${rotated.aid} rotated to key event ${rotated.sn}`)
  }
}
