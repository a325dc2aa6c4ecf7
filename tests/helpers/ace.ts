/*
|--------------------------------------------------------------------------
| The app's Ace kernel, in process
|--------------------------------------------------------------------------
*/
import app from '@adonisjs/core/services/app'
import type { Kernel } from '@adonisjs/core/ace'

let kernel: Kernel | undefined

/** What one in-process command run left. */
export interface AceRun {
  command: Awaited<ReturnType<Kernel['exec']>>
  exitCode: number | undefined
  /** Every log line, in order, with its stream. */
  logs: Array<{ message: string; stream: string }>
  stdout: string[]
  stderr: string[]
  /** Every log line's message, in order. */
  all: string[]
  /** The first line that parses as a JSON object (a `--json` command's output), else null. */
  json: any
}

/**
 * Runs `node ace <name> <argv>` through the app's own Ace kernel with a
 * fresh raw (in-memory) UI; answers the command, its exit code and its lines.
 */
export async function runAce(name: string, argv: string[]): Promise<AceRun> {
  kernel ??= await app.container.make('ace')
  kernel.ui.switchMode('raw')
  try {
    const command = await kernel.exec(name, argv)
    const logs = command.ui.logger.getLogs() as Array<{ message: string; stream: string }>
    const json = logs.map((l) => l.message).find((m) => m.trim().startsWith('{'))
    return {
      command,
      exitCode: command.exitCode,
      logs,
      stdout: logs.filter((l) => l.stream === 'stdout').map((l) => l.message),
      stderr: logs.filter((l) => l.stream === 'stderr').map((l) => l.message),
      all: logs.map((l) => l.message),
      json: json ? JSON.parse(json) : null,
    }
  } finally {
    // Give the shared kernel its console back (the suite teardown logs through it).
    kernel.ui.switchMode(process.stdout.isTTY ? 'normal' : 'silent')
  }
}
