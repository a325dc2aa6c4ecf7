/*
|--------------------------------------------------------------------------
| Where `kms:serve` takes its token from
|--------------------------------------------------------------------------
|
| `--token-file <path>` (first line, trimmed), else KMS_SERVE_TOKEN. Never
| the command line: argv is readable by every local user (`ps`), so
| `--token` is refused rather than used. At least MIN_TOKEN_LENGTH
| characters. Errors are E_KMS_CONFIG and never quote the token.
|
*/
import { readFileSync, statSync } from 'node:fs'
import { E_KMS_CONFIG } from '#app/errors'
import { assertTokenStrength } from '#kms/transit_server/token'

/** Where the token may come from. */
export interface ServeTokenSources {
  /** `--token` (refused when set). */
  argvToken?: string
  /** `--token-file`. */
  tokenFile?: string
  /** KMS_SERVE_TOKEN. */
  envToken?: string
}

/** The token, and warnings to print (never the token). */
export interface ServeToken {
  token: string
  warnings: string[]
}

function readTokenFile(path: string): ServeToken {
  let text: string
  let mode: number
  try {
    text = readFileSync(path, 'utf8')
    mode = statSync(path).mode
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new E_KMS_CONFIG([`cannot read --token-file ${path} (${code})`])
  }
  const token = text.split(/\r?\n/)[0].trim()
  if (!token) throw new E_KMS_CONFIG([`--token-file ${path} is empty`])
  const warnings: string[] = []
  if (mode & 0o077) {
    warnings.push(
      `--token-file ${path} is readable by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 it`
    )
  }
  return { token, warnings }
}

/**
 * Resolves the kms:serve token; throws E_KMS_CONFIG (one clear line) when
 * it is missing, given on the command line, unreadable or too short.
 */
export function resolveServeToken(sources: ServeTokenSources): ServeToken {
  if (sources.argvToken !== undefined) {
    throw new E_KMS_CONFIG([
      '--token is refused: a command line is visible to every local user (ps); set KMS_SERVE_TOKEN or use --token-file',
    ])
  }
  const resolved = sources.tokenFile
    ? readTokenFile(sources.tokenFile)
    : { token: sources.envToken ?? '', warnings: [] }
  if (!resolved.token) {
    throw new E_KMS_CONFIG([
      'kms:serve refuses to start without a token: set KMS_SERVE_TOKEN or use --token-file',
    ])
  }
  assertTokenStrength(resolved.token)
  return resolved
}
