import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { AuditExportService } from '#services/audit_export_service'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * `node ace audit:verify [--json]`
 */
export default class AuditVerify extends RewrapCommand {
  static commandName = 'audit:verify'
  static description =
    'Verify the audit trail: every SAID, link, signature and approval against the service key event log'
  static help = [
    'Exit 0 with the record count and head SAID; exit 1 naming the first broken record (E_AUDIT_CHAIN_BROKEN).',
    '{{ binaryName }} audit:verify',
    '{{ binaryName }} audit:verify --json',
  ]
  static options: CommandOptions = { startApp: true }

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print the verdict as one JSON object' })
  declare json?: boolean

  /**
   * Loads the chain and verifies it.
   */
  @inject()
  async run(audits: AuditExportService) {
    const verdict = await audits.verify()
    if (this.json) this.logger.log(JSON.stringify(verdict))
    if (!verdict.ok) {
      this.exitCode = 1
      const at = verdict.said ? ` (SAID ${verdict.said})` : ''
      if (!this.json) this.logger.error(`E_AUDIT_CHAIN_BROKEN: ${verdict.reason}${at}`)
      return
    }
    if (!this.json) {
      this.logger.success(
        `Audit chain intact: ${verdict.count} records, head ${verdict.head || '(none)'}, service AID ${verdict.serviceAid ?? '(none)'}`
      )
    }
  }
}
