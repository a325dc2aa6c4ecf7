/*
|--------------------------------------------------------------------------
| The foreground: the HTTP server, its load, warm-up and idle windows
|--------------------------------------------------------------------------
|
| The server (bin/server.ts) runs as a child; a worker thread sends
| GET /entries/:id at a fixed rate with a read-only token. An idle window
| is the same load with nothing else running: the baseline of the
| foreground-latency targets.
|
*/
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApplicationService } from '@adonisjs/core/types'
import { freePort } from '../embedded_postgres.js'
import type { Context } from './context.js'
import { ForegroundLoad, type ForegroundStats } from './load.js'
import { log } from './log.js'
import type { BenchOptions } from './options.js'
import { measure, settle } from './phase.js'
import { answers, startChild, TS_LOADER, type Child } from './processes.js'

/** Slowest requests of a window, as `ms into the window: ms`. */
export function slowest(stats: ForegroundStats | null | undefined): string {
  return (stats?.slowest ?? []).map((x) => `${x.atMs}: ${x.ms}`).join(', ')
}

/**
 * Starts the HTTP server (a child, pushed onto `children`) and the load
 * generator with a new read-only token.
 */
export async function startForeground(
  app: ApplicationService,
  options: BenchOptions,
  children: Child[]
): Promise<ForegroundLoad> {
  const httpPort = await startServer(children)
  const { TokenService } = await import('#services/token_service')
  const tokens = await app.container.make(TokenService)
  const created = await tokens.create({ name: 'bench', abilities: ['entries:read'] })
  const load = new ForegroundLoad({
    port: httpPort,
    token: created.token,
    rate: options.rate,
    concurrency: options.concurrency,
    maxWindowMs: 20 * 60_000,
    timeoutMs: 10_000,
  })
  log(`HTTP server listening on 127.0.0.1:${httpPort}`)
  return load
}

/**
 * Starts the HTTP server (bin/server.ts) as a child on a free loopback
 * port, pushed onto `children`; answers the port once it is live.
 */
export async function startServer(children: Child[]): Promise<number> {
  const httpPort = await freePort()
  children.push(
    await startChild(
      'server',
      [TS_LOADER, 'bin/server.ts'],
      { PORT: String(httpPort), HOST: '127.0.0.1' },
      () => answers(`http://127.0.0.1:${httpPort}/health/live`)
    )
  )
  return httpPort
}

/**
 * Warm-up (not measured): the server's first requests after seeding pay for
 * JIT, cold pages of the new rows and pool connections, which would
 * otherwise land in the idle p99.
 */
export async function warmUp(ctx: Context) {
  log('foreground warm-up (5 s, not measured)')
  await settle(ctx)
  ctx.load.start('warm-up', ctx.ids)
  await sleep(5_000)
  await ctx.load.stop()
}

/** A measured window of foreground load with nothing else running (`--idle-seconds`). */
export async function idleWindow(ctx: Context, label: string): Promise<ForegroundStats | null> {
  const window = await measure(ctx, label, true, () => sleep(ctx.options.idleSeconds * 1000))
  return window.foreground
}
