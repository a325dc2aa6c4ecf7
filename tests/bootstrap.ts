import { assert } from '@japa/assert'
import { apiClient } from '@japa/api-client'
import app from '@adonisjs/core/services/app'
import type { Config } from '@japa/runner/types'
import { pluginAdonisJS } from '@japa/plugin-adonisjs'
import testUtils from '@adonisjs/core/services/test_utils'

/**
 * Japa plugins.
 */
export const plugins: Config['plugins'] = [assert(), apiClient(), pluginAdonisJS(app)]

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
  if (['functional', 'integration'].includes(suite.name)) {
    return suite.setup(() => testUtils.httpServer().start())
  }
}
