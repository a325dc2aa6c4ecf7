import env from '#start/env'
import app from '@adonisjs/core/services/app'
import pino from 'pino'
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
      ...(logFile
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
