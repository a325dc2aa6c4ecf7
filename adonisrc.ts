import { defineConfig } from '@adonisjs/core/app'

export default defineConfig({
  /**
   * Ace commands: the framework's, Lucid's, the scheduler's and the app's own
   * (scanned from ./commands). The last loader answers the command a
   * `node ace <command>` process runs from its own file only, so that the
   * scan (which imports every command) is left for `list` and unknown names.
   */
  commands: [
    () => import('@adonisjs/core/commands'),
    () => import('@adonisjs/lucid/commands'),
    () => import('adonisjs-scheduler/commands'),
    () => import('#app/commands/requested_command_loader'),
  ],

  /**
   * Service providers booted with the application.
   */
  providers: [
    () => import('@adonisjs/core/providers/app_provider'),
    () => import('@adonisjs/core/providers/hash_provider'),
    {
      file: () => import('@adonisjs/core/providers/repl_provider'),
      environment: ['repl', 'test'],
    },
    () => import('@adonisjs/core/providers/vinejs_provider'),
    () => import('@adonisjs/lucid/database_provider'),
    () => import('@adonisjs/core/providers/edge_provider'),
    () => import('@adonisjs/session/session_provider'),
    () => import('@adonisjs/auth/auth_provider'),
    () => import('@adonisjs/shield/shield_provider'),
    () => import('@adonisjs/limiter/limiter_provider'),
    () => import('@adonisjs/queue/queue_provider'),
    () => import('#providers/kms_provider'),
    () => import('#providers/app_provider'),
    {
      file: () => import('adonisjs-scheduler/scheduler_provider'),
      environment: ['console'],
    },
  ],

  /**
   * Modules imported before the application starts.
   */
  preloads: [
    () => import('#start/routes'),
    () => import('#start/kernel'),
    { file: () => import('#start/scheduler'), environment: ['console'] },
  ],

  /**
   * Files the build copies: the console's templates, stylesheet and script.
   */
  metaFiles: [
    { pattern: 'resources/views/**/*.edge', reloadServer: false },
    { pattern: 'resources/console/**', reloadServer: false },
  ],

  /**
   * Test suites. Each file owns its data (its own KEK names, its own rows).
   */
  tests: {
    suites: [
      {
        files: ['tests/unit/**/*.spec.ts'],
        name: 'unit',
        timeout: 10_000,
      },
      {
        files: ['tests/functional/**/*.spec.ts'],
        name: 'functional',
        timeout: 60_000,
      },
      {
        files: ['tests/integration/**/*.spec.ts'],
        name: 'integration',
        timeout: 180_000,
      },
      {
        files: ['tests/browser/**/*.spec.ts'],
        name: 'browser',
        timeout: 120_000,
      },
      {
        files: ['tests/audit/**/*.spec.ts'],
        name: 'audit',
        timeout: 30_000,
      },
    ],
    forceExit: true,
  },
})
