import { writeFile } from 'node:fs/promises'
import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { AuditExportService } from '#services/audit_export_service'
import { RewrapCommand } from '#app/commands/rewrap_command'
import { E_AUDIT_NOT_CONFIGURED } from '#app/errors'

/**
 * `node ace audit:export --out <file>`
 */
export default class AuditExport extends RewrapCommand {
  static commandName = 'audit:export'
  static description =
    'Write the audit trail as a self-contained JSON file (records, key event logs, credentials) for offline verification'
  static help = [
    'Check the file anywhere with: npm run verify-audit -- <file>',
    '{{ binaryName }} audit:export --out audit.json',
  ]
  static options: CommandOptions = { startApp: true }

  /** Output file. */
  @flags.string({ description: 'File to write (JSON)' })
  declare out?: string

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print { file, count, head } as JSON' })
  declare json?: boolean

  /**
   * Builds the export and writes it.
   */
  @inject()
  async run(audits: AuditExportService) {
    if (!this.out) throw new E_AUDIT_NOT_CONFIGURED(['--out <file> is required'])
    const doc = await audits.export()
    await writeFile(this.out, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 })
    const summary = {
      file: this.out,
      count: doc.records.length,
      head: doc.records.at(-1)?.record.d ?? null,
      serviceAid: doc.serviceAid,
    }
    if (this.json) this.logger.log(JSON.stringify(summary))
    else
      this.logger.success(
        `Wrote ${summary.count} audit records to ${summary.file} (head ${summary.head ?? '(none)'})`
      )
  }
}
