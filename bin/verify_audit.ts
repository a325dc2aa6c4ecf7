/*
|--------------------------------------------------------------------------
| Standalone audit verifier
|--------------------------------------------------------------------------
|
| Verifies an `audit:export` file offline: no database, no app boot, no
| environment; it imports only the pure checks of app/governance.
|
|   node --import=@poppinss/ts-exec bin/verify_audit.ts <file> [--aid <AID>] [--head <SAID>] [--count <n>] [--json]
|   npm run verify-audit -- <file>
|
| --aid, --head and --count compare the file with values the auditor holds
| from elsewhere (a checkpoint): without them a truncated tail or a chain
| re-created under a new service AID cannot be told from a genuine one.
| Exit 0 when the chain verifies (and matches the checkpoint), 1 otherwise
| (the first broken record named), 2 on bad usage or an unreadable file.
|
*/
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ready } from '../app/governance/signify.js'
import { verifyAuditExport } from '../app/governance/audit_export.js'

function main(): number {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        aid: { type: 'string' },
        head: { type: 'string' },
        count: { type: 'string' },
        json: { type: 'boolean' },
      },
    })
  } catch (error) {
    process.stderr.write(`E_USAGE: ${(error as Error).message}\n`)
    return 2
  }
  const { values, positionals } = parsed
  if (positionals.length !== 1) {
    process.stderr.write(
      'E_USAGE: verify_audit.ts <export file> [--aid <AID>] [--head <SAID>] [--count <n>] [--json]\n'
    )
    return 2
  }
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(positionals[0], 'utf8'))
  } catch (error) {
    process.stderr.write(`E_EXPORT_UNREADABLE: ${(error as Error).message}\n`)
    return 2
  }
  let verdict: Record<string, unknown> = verifyAuditExport(doc)
  if (verdict.ok) {
    const mismatch = [
      values.aid !== undefined && values.aid !== verdict.serviceAid
        ? `service AID ${String(verdict.serviceAid)}, expected ${values.aid}`
        : null,
      values.count !== undefined && Number(values.count) !== verdict.count
        ? `${String(verdict.count)} records, expected ${values.count}`
        : null,
      values.head !== undefined && values.head !== verdict.head
        ? `head ${String(verdict.head)}, expected ${values.head}`
        : null,
    ].filter((m) => m !== null)
    if (mismatch.length > 0) {
      verdict = { ok: false, code: 'E_AUDIT_CHECKPOINT_MISMATCH', reason: mismatch.join('; ') }
    }
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(verdict)}\n`)
  } else if (verdict.ok) {
    process.stdout.write(
      `OK: ${String(verdict.count)} records, head ${String(verdict.head) || '(none)'}, service AID ${String(verdict.serviceAid ?? '(none)')}\n`
    )
  } else {
    const at = verdict.said ? ` (SAID ${String(verdict.said)})` : ''
    process.stdout.write(`${String(verdict.code)}: ${String(verdict.reason)}${at}\n`)
  }
  return verdict.ok ? 0 : 1
}

await ready()
process.exitCode = main()
