/*
|--------------------------------------------------------------------------
| The benchmark run
|--------------------------------------------------------------------------
|
| One process, one run, every variant side by side (the machine is shared
| and noisy: compare only within a run). See docs/benchmarks.md.
|
| 1. Own database, migrated by `node ace migration:run --force`; the app
|    booted in-process (the services are called directly)  → setup.ts
| 2. Children: `node ace kms:serve` (vault driver) and bin/server.ts
|    (foreground GET /entries/:id load from a worker thread) → kms.ts,
|    foreground.ts
| 3. Smaller scale (--rss-rows): seed, floor, Rewrap local, Rewrap vault.
| 4. Full scale (--rows): seed the rest, idle foreground window, floor,
|    Rewrap local, Rewrap vault, floor again, HOT experiment, published
|    → scales.ts (one module per variant).
|    Every Rewrap variant rotates the KEK first (Step A) and rewraps all
|    rows to the new version: each starts from the same N stale rows.
| 5. Cloud drivers (aws-kms, azure-keyvault) against their stand-ins with
|    an injected latency per answer → cloud.ts
| 6. Workers: one rotation shared by `rotate:kek --workers N` children,
|    vault driver against kms:serve with an injected latency → workers.ts
| 7. Targets judged, summary printed, JSON written → targets.ts, summary.ts
|
*/
import 'reflect-metadata'
import { log } from './log.js'
import { checkpoint, exposeGc } from './memory.js'
import { parseOptions } from './options.js'
import { createContext, startApp, tearDown, type Held } from './setup.js'
import { cloudTargets } from './cloud_report.js'
import { printSummary, writeResults } from './summary.js'
import { evaluateTargets } from './targets.js'
import { workersTargets, type WorkersResult } from './workers_report.js'

/**
 * Runs the benchmark with command-line `argv`.
 */
export async function main(argv: string[]) {
  const options = parseOptions(argv)
  const startedAt = new Date()
  const gc = exposeGc()
  checkpoint('start')
  log(
    `rows ${options.rows.toLocaleString()}, small scale ${options.rssRows.toLocaleString()}, published subset ${options.publishedRows.toLocaleString()}`
  )
  const held: Held = { children: [] }
  try {
    const started = await startApp(options, held)
    // The phases import app services, which read the app at import time: loaded once it booted.
    const { emptyScaleResults, runScales } = await import('./scales.js')
    checkpoint('app booted')
    const { ctx, postgres } = await createContext(started, options, { startedAt, gc }, held)
    checkpoint('children and load worker started')

    const onlyOne = options.cloudOnly || options.workersOnly
    const results = onlyOne ? emptyScaleResults() : await runScales(ctx)
    const { cloudVariants } = await import('./cloud.js')
    const cloud = options.skipCloud || options.workersOnly ? [] : await cloudVariants(ctx)
    const { workersVariants } = await import('./workers.js')
    const workers: WorkersResult | null =
      options.workers.length && !options.cloudOnly ? await workersVariants(ctx) : null
    const targets = [
      ...(onlyOne
        ? []
        : evaluateTargets(results.full, results.small, results.idle, results.floorFull)),
      ...cloudTargets(cloud),
      ...(workers ? workersTargets(workers) : []),
    ]
    printSummary(options, results, targets, cloud, workers)
    const file = writeResults(
      {
        startedAt,
        options,
        postgres,
        database: started.database,
        rotationDefaults: started.app.config.get('rewrap.rotation'),
      },
      results,
      targets,
      cloud,
      workers
    )
    log(`results written to ${file}`)
  } finally {
    await tearDown(held)
  }
}
