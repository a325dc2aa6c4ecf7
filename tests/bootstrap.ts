import { assert } from '@japa/assert'
import { apiClient } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import type { Config } from '@japa/runner/types'
import { pluginAdonisJS } from '@japa/plugin-adonisjs'
import testUtils from '@adonisjs/core/services/test_utils'
import { browserClient } from '@japa/browser-client'
import { freePort } from '../bin/embedded_postgres.js'
import { chromiumPath, launchChromium } from './helpers/browser.js'

/**
 * Japa plugins.
 */
export const plugins: Config['plugins'] = [
  assert(),
  apiClient(),
  pluginAdonisJS(app),
  // The browser suite drives Debian's chromium; without one its tests skip (tests/helpers/browser.ts).
  ...(chromiumPath()
    ? [browserClient({ runInSuites: ['browser'], launcher: () => launchChromium() })]
    : []),
]

/**
 * Migrate the run's own database (bin/test.ts created it) once, start the
 * HTTP server for functional suites.
 */
export const runnerHooks: Required<Pick<Config, 'setup' | 'teardown'>> = {
  setup: [() => testUtils.db().migrate()],
  teardown: [],
}

/**
 * Suite hooks.
 */
export const configureSuite: Config['configureSuite'] = (suite) => {
  if (['functional', 'integration', 'browser'].includes(suite.name)) {
    return suite.setup(async () => {
      // A free port per run: parallel runs on one machine must not collide,
      // and @japa/api-client builds its base URL from HOST and PORT.
      process.env.HOST = '127.0.0.1'
      process.env.PORT = String(await freePort())
      return testUtils.httpServer().start()
    })
  }
}
