/*
|--------------------------------------------------------------------------
| Where the embedded PostgreSQL runs from
|--------------------------------------------------------------------------
|
| PostgreSQL refuses to run as root, so under root the cluster runs as the
| `postgres` user (created when missing). That user must be able to enter
| every folder on the way to the binaries and to the data directory; a
| clone under a private home (mode 0700, as root's own is) is closed to it.
| Then:
|  - the binaries are hard-linked (or copied) into a fresh 0700 folder owned
|    by `postgres` under the system temp dir (mkdtemp: no symlink race);
|  - throw-away data (tests) goes into that folder too;
|  - persistent data (`npm start`) goes into a 0700 folder owned by
|    `postgres` under /var/lib/rewrap, remembered in a pointer file beside
|    the preferred folder.
| As a normal user the cluster runs as that user, in place, folders 0700.
|
*/
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  lstatSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'

/** A failure to set up the embedded PostgreSQL: the message says why and what to do. */
export class EmbeddedPostgresError extends Error {
  code = 'E_EMBEDDED_PG'
}

/** The user the cluster runs as when this process is root. */
export interface RunAs {
  name: string
  uid: number
  gid: number
}

/** The base folder of persistent clusters placed outside an unreachable clone (root only). */
export const EXTERNAL_BASE = '/var/lib/rewrap'

function idOf(name: string, flag: '-u' | '-g'): number | null {
  const result = spawnSync('id', [flag, name], { encoding: 'utf8' })
  return result.status === 0 ? Number(result.stdout.trim()) : null
}

/**
 * The `postgres` user when this process runs as root (created when
 * missing), else null: the cluster runs as the current user.
 */
export function postgresUser(): RunAs | null {
  if (process.getuid?.() !== 0) return null
  if (idOf('postgres', '-u') === null) {
    const created = spawnSync(
      'useradd',
      ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'],
      { encoding: 'utf8' }
    )
    if (created.status !== 0) {
      throw new EmbeddedPostgresError(
        `PostgreSQL cannot run as root and creating a "postgres" user failed (${(created.stderr || String(created.error)).trim()}): create one (useradd --system postgres), run as a normal user, or set DATABASE_URL`
      )
    }
  }
  const uid = idOf('postgres', '-u')
  const gid = idOf('postgres', '-g')
  if (uid === null || gid === null) {
    throw new EmbeddedPostgresError('the "postgres" user has no uid/gid: check `id postgres`')
  }
  return { name: 'postgres', uid, gid }
}

/**
 * Whether `who` can reach `path` with `test -<test>` (x: enter or run, r:
 * read). Checked by that user itself, as the cluster will run.
 */
export function canReach(path: string, who: RunAs | null, test: 'x' | 'r' = 'x'): boolean {
  const result = spawnSync('/bin/sh', ['-c', `test -${test} "$1"`, 'sh', path], {
    ...(who ? { uid: who.uid, gid: who.gid } : {}),
    stdio: 'ignore',
  })
  return result.status === 0
}

/**
 * Checks that `path` is a real folder (no symlink) owned by `owner` (or
 * this process) with mode 0700; throws otherwise.
 */
export function assertPrivateDir(path: string, owner: RunAs | null) {
  const stat = lstatSync(path)
  const uid = owner ? owner.uid : process.getuid!()
  if (!stat.isDirectory() || stat.isSymbolicLink()) {
    throw new EmbeddedPostgresError(`${path} is not a folder: remove it and start again`)
  }
  if (stat.uid !== uid || (stat.mode & 0o777) !== 0o700) {
    throw new EmbeddedPostgresError(
      `${path} must be a 0700 folder owned by uid ${uid} (it is ${(stat.mode & 0o777).toString(8)} owned by uid ${stat.uid}): fix or remove it`
    )
  }
}

/**
 * A new, unique 0700 folder under `parent` owned by `owner` (mkdtemp: an
 * attacker cannot pre-create or symlink it).
 */
export function makePrivateDir(parent: string, prefix: string, owner: RunAs | null): string {
  const path = mkdtempSync(join(parent, prefix))
  chmodSync(path, 0o700)
  if (owner) chownSync(path, owner.uid, owner.gid)
  assertPrivateDir(path, owner)
  return path
}

/**
 * Makes `path` (created when missing) a 0700 folder owned by `owner`.
 */
export function ensurePrivateDir(path: string, owner: RunAs | null) {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  const stat = lstatSync(path)
  if (!stat.isDirectory()) throw new EmbeddedPostgresError(`${path} is not a folder`)
  if (owner && stat.uid !== owner.uid) chownSync(path, owner.uid, owner.gid)
  if ((stat.mode & 0o777) !== 0o700) chmodSync(path, 0o700)
  assertPrivateDir(path, owner)
}

/**
 * Mirrors the tree `source` into `target`: hard links (same file system),
 * else copies keeping the mode; symlinks recreated. Files stay owned by
 * their owner (a hard link must never be chown'ed); the new folders are
 * given to `owner` once filled, so that it can remove the tree.
 */
export function linkTree(source: string, target: string, owner: RunAs | null) {
  mkdirSync(target, { mode: 0o755 })
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    const from = join(source, entry.name)
    const to = join(target, entry.name)
    if (entry.isSymbolicLink()) symlinkSync(readlinkSync(from), to)
    else if (entry.isDirectory()) linkTree(from, to, owner)
    else {
      try {
        linkSync(from, to)
      } catch {
        copyFileSync(from, to)
        chmodSync(to, lstatSync(from).mode & 0o755)
      }
    }
  }
  if (owner) chownSync(target, owner.uid, owner.gid)
}

/**
 * Removes `path` as `owner` (the user that ran the cluster owns what is in
 * it: root never walks a tree that user could swap under it), then the
 * emptied folder itself.
 */
export function removeAs(path: string, owner: RunAs | null) {
  if (!owner) return rmSync(path, { recursive: true, force: true })
  spawnSync('rm', ['-rf', '--', path], { uid: owner.uid, gid: owner.gid, stdio: 'ignore' })
  try {
    rmdirSync(path)
  } catch {
    // gone already (or not empty: left for the user to inspect)
  }
}

/** Where a cluster runs: its binaries, its data, and what to remove at stop. */
export interface Placement {
  runAs: RunAs | null
  /** The `native` folder holding bin/, lib/, share/. */
  nativeDir: string
  /** The data directory (initdb's `-D`). */
  dataDir: string
  /** A folder under the temp dir to remove at stop (staged binaries, test data). */
  runtimeDir?: string
  /** Folders to remove at stop, as runAs (throw-away data, staged binaries). */
  removeAtStop: string[]
  /** Lines worth telling the user (where things went and why). */
  notices: string[]
}

/**
 * Decides where the cluster's binaries and data live so that the user it
 * runs as can reach them, creating the folders (0700, owned by that user).
 * `dir` is the preferred folder (./.data/pg, ./tmp/test-pg-<pid>).
 */
export function placeCluster(options: {
  dir: string
  persistent: boolean
  nativeDir: string
}): Placement {
  const runAs = postgresUser()
  const notices: string[] = []
  const removeAtStop: string[] = []
  let runtimeDir: string | undefined
  // Created root-owned: root fills it (staged binaries) before `postgres` gets it, at the end.
  const runtime = () => {
    runtimeDir ??= makePrivateDir(tmpdir(), 'rewrap-pg-', null)
    return runtimeDir
  }

  let nativeDir = options.nativeDir
  if (!canReach(join(nativeDir, 'bin', 'postgres'), runAs)) {
    if (!runAs) {
      throw new EmbeddedPostgresError(
        `cannot run ${join(nativeDir, 'bin', 'postgres')}: check the file's permissions or reinstall (npm ci)`
      )
    }
    nativeDir = join(runtime(), 'native')
    linkTree(options.nativeDir, nativeDir, runAs)
    notices.push(
      `the "postgres" user cannot enter this folder: its binaries are linked into ${runtime()}`
    )
  }

  const pointer = `${options.dir}.location`
  let home = options.dir
  mkdirSync(dirname(options.dir), { recursive: true, mode: 0o700 })
  if (options.persistent && existsSync(pointer)) {
    home = readFileSync(pointer, 'utf8').trim()
    assertPrivateDir(home, runAs)
  } else if (!runAs || canReach(dirname(options.dir), runAs)) {
    ensurePrivateDir(home, runAs)
  } else if (options.persistent) {
    mkdirSync(EXTERNAL_BASE, { recursive: true, mode: 0o755 })
    const base = lstatSync(EXTERNAL_BASE)
    if (!base.isDirectory() || base.uid !== 0 || (base.mode & 0o022) !== 0) {
      throw new EmbeddedPostgresError(
        `${EXTERNAL_BASE} must be a folder owned by root and writable by root only: fix it, or set DATABASE_URL`
      )
    }
    home = makePrivateDir(EXTERNAL_BASE, `${basename(dirname(dirname(options.dir)))}-`, runAs)
    writeFileSync(pointer, `${home}\n`, { mode: 0o600 })
    notices.push(
      `the "postgres" user cannot enter this folder: the database lives in ${home} (remembered in ${pointer})`
    )
  } else {
    home = runtime()
  }
  if (!options.persistent) removeAtStop.push(home === runtimeDir ? join(home, 'data') : home)
  if (runtimeDir) {
    if (runAs) chownSync(runtimeDir, runAs.uid, runAs.gid)
    assertPrivateDir(runtimeDir, runAs)
    removeAtStop.push(runtimeDir)
  }
  return { runAs, nativeDir, dataDir: join(home, 'data'), runtimeDir, removeAtStop, notices }
}
