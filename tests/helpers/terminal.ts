/*
|--------------------------------------------------------------------------
| Ace commands on a real pseudo-terminal
|--------------------------------------------------------------------------
|
| `script` (util-linux) runs the command with a pseudo-terminal as its
| stdin, stdout and stderr and copies everything written to it to its own
| stdout: the bytes a person at a terminal would see.
|
*/
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ACE = fileURLToPath(new URL('../../ace.js', import.meta.url))

/** Why commands cannot be run on a pseudo-terminal here, or null. */
export function terminalUnavailable(): string | null {
  const probe = spawnSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore' })
  if (probe.error) return 'util-linux `script` is not installed (needed for a pseudo-terminal)'
  return probe.status === 0 ? null : `\`script\` exited ${probe.status}`
}

function quote(arg: string) {
  return `'${arg.replaceAll("'", `'\\''`)}'`
}

/** What a command left on its terminal. */
export interface TerminalRun {
  exitCode: number | null
  /** The raw bytes written to the terminal (escape sequences included). */
  raw: string
  /** The screen's lines: each line's frames, a frame being text after a carriage return or cursor-to-column-1. */
  lines: string[][]
}

/**
 * Runs `node ace <args>` on a pseudo-terminal `columns` wide, with the test
 * run's environment (database, keys, LOG_FILE) changed by `env` (undefined
 * removes a variable); resolves when it exits.
 */
export async function runOnTerminal(
  args: string[],
  options: { env?: Record<string, string | undefined>; columns?: number } = {}
): Promise<TerminalRun> {
  const columns = options.columns ?? 160
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color' }
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name]
    else env[name] = value
  }
  const command = `stty cols ${columns} rows 40; exec ${[process.execPath, ACE, ...args].map(quote).join(' ')}`
  const child = spawn('script', ['-qefc', command, '/dev/null'], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let raw = ''
  child.stdout.on('data', (chunk) => (raw += chunk))
  child.stderr.on('data', (chunk) => (raw += chunk))
  const exitCode = await new Promise<number | null>((resolve) =>
    child.on('exit', (code) => resolve(code))
  )
  child.stdin.end()
  return { exitCode, raw, lines: screenLines(raw) }
}

/**
 * Splits terminal output into lines of frames: `\n` ends a line; `\r` and
 * ESC[1G / ESC[G (cursor to column 1) start a new frame on the same line;
 * other escape sequences (colors, clear to end of line) are dropped.
 */
export function screenLines(raw: string): string[][] {
  const FRAME = '\u0000'
  const ESC = String.fromCharCode(27)
  const text = raw
    .replace(/\r\n/g, '\n')
    .replace(new RegExp(`\r|${ESC}\\[1?G`, 'g'), FRAME)
    // CSI sequences, then ESC 7 / ESC 8 (save and restore the cursor).
    .replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '')
    .replace(new RegExp(`${ESC}[78]`, 'g'), '')
  return text.split('\n').map((line) =>
    line
      .split(FRAME)
      .map((frame) => frame.trimEnd())
      .filter(Boolean)
  )
}
