/*
|--------------------------------------------------------------------------
| HTTP server entry point
|--------------------------------------------------------------------------
*/
import 'reflect-metadata'
import { Ignitor, prettyPrintError } from '@adonisjs/core'
import type { ApplicationService } from '@adonisjs/core/types'
import { createNodeServer, type NodeServerTimeouts } from '../app/http/node_server.js'
import { warnIfEnvFileExposed } from '#app/env_file'

const APP_ROOT = new URL('../', import.meta.url)

const IMPORTER = (filePath: string) => {
  if (filePath.startsWith('./') || filePath.startsWith('../')) {
    return import(new URL(filePath, APP_ROOT).href)
  }
  return import(filePath)
}

let application: ApplicationService | undefined

new Ignitor(APP_ROOT, { importer: IMPORTER })
  .tap((app) => {
    application = app
    app.booting(async () => {
      await import('#start/env')
    })
    app.ready(() => warnIfEnvFileExposed(app))
    // One warning when DUAL_CONTROL=off; a change of the setting goes to the audit trail.
    app.ready(async () => {
      const { announceDualControl } = await import('#services/dual_control')
      await announceDualControl(app)
    })
    app.listen('SIGTERM', () => app.terminate())
    app.listenIf(app.managedByPm2, 'SIGINT', () => app.terminate())
  })
  .httpServer()
  // Request / headers / keep-alive limits of config/app.ts (`serverTimeouts`).
  .start((handler) =>
    createNodeServer(handler, application!.config.get<NodeServerTimeouts>('app.serverTimeouts'))
  )
  .catch((error) => {
    process.exitCode = 1
    prettyPrintError(error)
  })
