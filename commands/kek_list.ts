import { inject } from '@adonisjs/core'
import { flags } from '@adonisjs/core/ace'
import type { CommandOptions } from '@adonisjs/core/types/ace'
import { KekService } from '#services/kek_service'
import { RewrapCommand } from '#app/commands/rewrap_command'

/**
 * Human age of a number of seconds: `45s`, `12m`, `3h 5m`, `4d 2h`.
 */
function formatAge(seconds: number | null): string {
  if (seconds === null) return '-'
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`
  if (seconds < 86_400)
    return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3600)}h`
}

/**
 * `node ace kek:list [--json]`
 */
export default class KekList extends RewrapCommand {
  static commandName = 'kek:list'
  static description =
    'List KEKs: versions with their ages, latest, min decryption version and rows per version'
  static help = ['{{ binaryName }} kek:list', '{{ binaryName }} kek:list --json']
  static options: CommandOptions = { startApp: true }

  /** Machine-readable output. */
  @flags.boolean({ description: 'Print a JSON object { keks: [...] }' })
  declare json?: boolean

  /**
   * Lists every KEK.
   */
  @inject()
  async run(keks: KekService) {
    const list = await keks.list()
    if (this.json) {
      this.logger.log(JSON.stringify({ keks: list }))
      return
    }
    if (list.length === 0) {
      this.logger.info('No KEKs yet (create one with kek:create)')
      return
    }
    const table = this.ui.table()
    table.head(['KEK', 'Version', 'Created', 'Age', 'Rows', 'State'])
    for (const kek of list) {
      if (kek.versions.length === 0) {
        table.row([kek.name, '-', '-', '-', '0', kek.exists ? '' : 'missing in KMS'])
      }
      for (const v of kek.versions) {
        const state: string[] = []
        if (v.version === kek.latestVersion) state.push('latest')
        if (kek.minDecryptionVersion !== null && v.version === kek.minDecryptionVersion)
          state.push('min decryption')
        if (!v.decryptable)
          state.push(kek.exists ? `${v.state}, not decryptable` : 'missing in KMS')
        table.row([
          kek.name,
          `v${v.version}`,
          v.createdAt ?? '-',
          formatAge(v.ageSeconds),
          String(v.rows),
          state.join(', '),
        ])
      }
    }
    table.render()
  }
}
