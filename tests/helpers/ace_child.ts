import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ACE = fileURLToPath(new URL('../../ace.js', import.meta.url))

/** A `node ace …` child process of a test. */
export interface AceChild {
  child: ChildProcess
  /** Its stdout and stderr so far. */
  output(): string
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>
  /** SIGKILLs it unless it has exited (for a test's cleanup). */
  killIfRunning(): void
}

/**
 * Starts `node ace <args>` in its own process with the test run's
 * environment (database, keys, LOG_FILE) plus `env`, e.g. to SIGKILL it
 * mid-run or to point it at another database.
 */
export function spawnAce(args: string[], env: Record<string, string> = {}): AceChild {
  const child = spawn(process.execPath, [ACE, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const killIfRunning = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  return { child, output: () => output, exited, killIfRunning }
}
