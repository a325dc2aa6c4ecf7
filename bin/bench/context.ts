/*
|--------------------------------------------------------------------------
| What every phase of the benchmark works with
|--------------------------------------------------------------------------
*/
import type { ApplicationService } from '@adonisjs/core/types'
import type { KmsDriver } from '#kms/contract'
import type { ForegroundLoad } from './load.js'
import type { BenchOptions } from './options.js'
import type { Child } from './processes.js'

/** Lucid's database service (imported once the app has booted). */
export type Db = (typeof import('@adonisjs/lucid/services/db'))['default']

/** Everything a phase needs. */
export interface Context {
  options: BenchOptions
  app: ApplicationService
  db: Db
  kekName: string
  /** The local driver as the app resolves it (instrumented). */
  local: KmsDriver
  /** The local driver, not instrumented (the swapped manager does it). */
  localRaw: KmsDriver
  vault: KmsDriver | null
  load: ForegroundLoad
  children: Child[]
  gc: () => void
  /** The version every row of the KEK is at between phases. */
  current: number
  /** Ace entry of the rotate:kek variant: the compiled build, or ace.js with --cli-from-source. */
  cliEntry: string
  ids: { minId: number; maxId: number }
}
