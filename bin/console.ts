/*
|--------------------------------------------------------------------------
| Ace entry point
|--------------------------------------------------------------------------
*/
import 'reflect-metadata'
import { Ignitor, prettyPrintError } from '@adonisjs/core'

const APP_ROOT = new URL('../', import.meta.url)

/** The command line after `node ace`. */
const argv = process.argv.splice(2)

const IMPORTER = (filePath: string) => {
  if (filePath.startsWith('./') || filePath.startsWith('../')) {
    return import(new URL(filePath, APP_ROOT).href)
  }
  return import(filePath)
}

new Ignitor(APP_ROOT, { importer: IMPORTER })
  .tap((app) => {
    app.booting(async () => {
      await import('#start/env')
    })
    app.listen('SIGTERM', () => app.terminate())
    app.listenIf(app.managedByPm2, 'SIGINT', () => app.terminate())
  })
  .ace()
  .configure(async (app) => {
    // Ace's parse errors (unknown flag, bad value) as one `E_CODE: message` line too.
    const { useErrorCodeLines } = await import('#app/commands/ace_error_lines')
    useErrorCodeLines(await app.container.make('ace'))
    // Only the requested command's file is imported (see app/commands/requested_command_loader.ts).
    const { requestCommand } = await import('#app/commands/requested_command_loader')
    requestCommand(argv)
  })
  .handle(argv)
  .catch((error) => {
    process.exitCode = 1
    prettyPrintError(error)
  })
