/*
|--------------------------------------------------------------------------
| Log records on the terminal of an Ace command
|--------------------------------------------------------------------------
|
| When an Ace command runs on a terminal (stderr is a TTY), config/logger.ts
| sends every log record to the log file and to `terminalLogStream`, which
| prints it as one line on stderr. While a command shows a progress bar
| (a progress session, see app/commands/progress_bar.ts) two things change:
| lines are written above the bar, never into it, and records below `warn`
| stay off the terminal (they are in the log file): the command's own
| summary then says each fact once.
|
*/
import { styleText } from 'node:util'

/** Something drawn at the bottom of the terminal that other lines must go above. */
export interface TerminalOverlay {
  /** Writes `line` (no trailing newline) above the overlay and draws the overlay again. */
  writeAbove(line: string): void
}

/** pino's numeric levels. */
const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
}
const LEVEL_STYLE: Record<number, Parameters<typeof styleText>[0]> = {
  10: 'gray',
  20: 'gray',
  30: 'green',
  40: 'yellow',
  50: 'red',
  60: 'red',
}
const WARN = 40
/** Fields of a pino record that the line shows in its own way, or not at all. */
const OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg'])

/**
 * The terminal (stderr) of this process: one overlay at most (the progress
 * bar being drawn) and whether a progress session is open.
 */
class Terminal {
  #overlay: TerminalOverlay | null = null
  #sessions = 0

  /** Whether a command is showing progress (records below `warn` stay in the log file). */
  get showingProgress() {
    return this.#sessions > 0
  }

  /** Opens a progress session; answers the function that closes it. */
  beginProgress(): () => void {
    this.#sessions++
    let open = true
    return () => {
      if (open) this.#sessions--
      open = false
    }
  }

  /** Draws `overlay` at the bottom until `detach`. */
  attach(overlay: TerminalOverlay) {
    this.#overlay = overlay
  }

  /** Removes `overlay` (when it is the one drawn). */
  detach(overlay: TerminalOverlay) {
    if (this.#overlay === overlay) this.#overlay = null
  }

  /** Whether an overlay is drawn. */
  get hasOverlay() {
    return this.#overlay !== null
  }

  /** Writes one line to `stream` (default stderr), above the overlay when one is drawn. */
  writeLine(line: string, stream: NodeJS.WritableStream = process.stderr) {
    if (this.#overlay) this.#overlay.writeAbove(line)
    else stream.write(`${line}\n`)
  }
}

/** This process's terminal. */
export const terminal = new Terminal()

/** One field value of a log line: bare when it reads unambiguously, else JSON. */
function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
  if (value instanceof Object) return JSON.stringify(value)
  return String(value)
}

/**
 * One pino record (a parsed JSON line) as one terminal line:
 * `12:00:01.123 WARN  KMS unavailable; backing off kek=orders run=3`.
 */
export function formatRecord(record: Record<string, unknown>, colors: boolean): string {
  const level = typeof record.level === 'number' ? record.level : 30
  const time = typeof record.time === 'number' ? new Date(record.time) : new Date()
  const clock = time.toISOString().slice(11, 23)
  const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5)
  const fields = Object.entries(record)
    .filter(([key]) => !OMITTED.has(key))
    .map(([key, value]) => `${key}=${fieldValue(value)}`)
  const text = [String(record.msg ?? ''), ...fields].filter(Boolean).join(' ')
  // One line: a newline inside a message or field would break out of it.
  const oneLine = text.replace(/[\r\n]+/g, ' ')
  if (!colors) return `${clock} ${name} ${oneLine}`
  const style = LEVEL_STYLE[level] ?? 'white'
  const paint = (format: Parameters<typeof styleText>[0], value: string) =>
    styleText(format, value, { validateStream: false })
  return `${paint('gray', clock)} ${paint(style, name)} ${oneLine}`
}

/**
 * A pino destination printing records as single lines on stderr (through
 * `terminal`): every record at the logger's level, but only warnings and
 * errors while a progress session is open and `quietWhileProgress` (the
 * full log then goes to a file next to this stream).
 */
export function terminalLogStream(options: { colors: boolean; quietWhileProgress: boolean }) {
  return {
    write(chunk: string) {
      for (const json of chunk.split('\n')) {
        if (!json.trim()) continue
        let record: Record<string, unknown>
        try {
          record = JSON.parse(json)
        } catch {
          terminal.writeLine(json)
          continue
        }
        const level = typeof record.level === 'number' ? record.level : 30
        if (options.quietWhileProgress && terminal.showingProgress && level < WARN) continue
        terminal.writeLine(formatRecord(record, options.colors))
      }
    },
  }
}
