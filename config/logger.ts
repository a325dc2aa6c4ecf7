import env from '#start/env'
import app from '@adonisjs/core/services/app'
import pino from 'pino'
import { prepareLogFile } from '#app/utils/log_file'
import { terminalLogStream } from '#app/utils/terminal_log'
import { defineConfig, targets } from '@adonisjs/core/logger'

/**
 * Paths pino redacts wherever they appear in a log object: secrets never
 * leave the boundary even when a caller logs a whole object by mistake.
 */
export const redactPaths = [
  'token',
  '*.token',
  'plaintext',
  '*.plaintext',
  'dek',
  '*.dek',
  'data',
  '*.data',
  'req.headers.authorization',
  'req.headers["x-vault-token"]',
  'headers.authorization',
  'headers["x-vault-token"]',
]

const logFile = env.get('LOG_FILE')

/**
 * An Ace command on a terminal (stderr is a TTY): records as single lines on
 * stderr, written above a progress bar while one is drawn, and the full log
 * in LOG_FILE (default tmp/logs/ace.log, rolled over to ace.log.1 past 10 MiB:
 * app/utils/log_file.ts). While a command shows progress
 * the terminal gets warnings and errors only (app/utils/terminal_log.ts).
 * Without a writable log file the terminal keeps every record.
 */
function commandTerminal() {
  const file = logFile ?? app.tmpPath('logs', 'ace.log')
  // A LOG_FILE someone set is theirs to rotate; the default one is kept bounded here.
  const hasFile = logFile ? prepareLogFile(file, Number.POSITIVE_INFINITY) : prepareLogFile(file)
  const terminal = terminalLogStream({
    colors: process.stderr.hasColors?.() ?? false,
    quietWhileProgress: hasFile,
  })
  return pino.multistream([
    { level: 'trace', stream: terminal },
    ...(hasFile
      ? [{ level: 'trace' as const, stream: pino.destination({ dest: file, sync: true }) }]
      : []),
  ])
}

/*
 * Log lines go to stderr, so that command output on stdout (`--json`) stays clean.
 */
const loggerConfig = defineConfig({
  default: 'app',
  loggers: {
    app: {
      enabled: true,
      name: env.get('APP_NAME', 'rewrap'),
      level: env.get('LOG_LEVEL', 'info'),
      redact: { paths: redactPaths, censor: '[redacted]' },
      /**
       * LOG_FILE (the tests set it): synchronous writes to that file, so a
       * test can read every line that was logged before it.
       */
      ...(app.getEnvironment() === 'console' && process.stderr.isTTY
        ? { destination: commandTerminal() }
        : logFile
          ? { destination: pino.destination({ dest: logFile, sync: true, mkdir: true }) }
          : {
              transport: {
                targets: targets()
                  .pushIf(!app.inProduction, targets.pretty({ destination: 2 }))
                  .pushIf(app.inProduction, targets.file({ destination: 2 }))
                  .toArray(),
              },
            }),
    },
  },
})

export default loggerConfig

declare module '@adonisjs/core/types' {
  export interface LoggersList extends InferLoggers<typeof loggerConfig> {}
}
