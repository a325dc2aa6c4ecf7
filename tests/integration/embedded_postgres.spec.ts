import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import pg from 'pg'
import {
  freePort,
  LEGACY_PASSWORD,
  startEmbeddedPostgres,
  type EmbeddedCluster,
} from '../../bin/embedded_postgres.js'
import { canReach, postgresUser } from '../../bin/pg_placement.js'

/*
| The embedded PostgreSQL `npm start` and `npm test` run: generated
| superuser password, 0700 folders owned by the user that runs postgres,
| the move off the old fixed password, and (as root, in a child process)
| a clone inside a private 0700 folder the `postgres` user cannot enter.
*/

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MODULE = JSON.stringify(new URL('../../bin/embedded_postgres.js', import.meta.url).href)
const isRoot = process.getuid?.() === 0
const NOBODY = { name: 'nobody', uid: 65534, gid: 65534 }

/** A fresh folder the cluster's user can enter (0711: as root, postgres must). */
function freshHome(dirs: string[]) {
  const home = mkdtempSync(join(tmpdir(), 'rewrap-pgtest-'))
  chmodSync(home, 0o711)
  dirs.push(home)
  return home
}

/** Whether `password` logs the superuser in: true, false (28P01), or the error code. */
async function logsIn(cluster: { port: number }, password: string): Promise<boolean | string> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: cluster.port,
    user: 'postgres',
    password,
  })
  try {
    await client.connect()
    await client.end()
    return true
  } catch (error) {
    await client.end().catch(() => {})
    const code = (error as { code?: string }).code
    return code === '28P01' ? false : (code ?? String(error))
  }
}

function mode(path: string) {
  return (statSync(path).mode & 0o777).toString(8)
}

/**
 * Runs `script` (an ES module; `MODULE` is the embedded_postgres module URL)
 * with the Node of this run, as `uid`/`gid` when given; answers its last
 * stdout line as JSON, or the failure with its output.
 */
function runChild(script: string, ids: { uid?: number; gid?: number } = {}) {
  return new Promise<{ code: number | null; json?: any; output: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import=@poppinss/ts-exec', '--input-type=module', '-e', script],
      {
        cwd: ROOT,
        ...ids,
        env: { PATH: process.env.PATH, HOME: tmpdir(), LANG: 'C' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }
    )
    let stdout = ''
    let output = ''
    child.stdout.on('data', (chunk) => ((stdout += chunk), (output += chunk)))
    child.stderr.on('data', (chunk) => (output += chunk))
    child.on('close', (code) => {
      let json: any
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '')
      } catch {}
      resolve({ code, json, output })
    })
  })
}

test.group('embedded PostgreSQL: password and folders', (group) => {
  const clusters: EmbeddedCluster[] = []
  const dirs: string[] = []
  group.each.teardown(async () => {
    for (const cluster of clusters.splice(0)) await cluster.stop().catch(() => {})
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  test('the superuser has the generated password, not "rewrap"; folders are 0700, owned by the user that runs postgres', async ({
    assert,
  }) => {
    const home = freshHome(dirs)
    const port = await freePort()
    const password = randomBytes(18).toString('base64url')
    const cluster = await startEmbeddedPostgres({
      dir: join(home, 'pg'),
      port,
      persistent: true,
      password,
    })
    clusters.push(cluster)
    assert.isTrue(await logsIn({ port }, password))
    assert.isFalse(await logsIn({ port }, LEGACY_PASSWORD), 'the old fixed password is refused')

    const owner = postgresUser()?.uid ?? process.getuid!()
    for (const path of [cluster.dataDir, join(cluster.dataDir, '..')]) {
      assert.equal(mode(path), '700', `${path} is 0700`)
      assert.equal(statSync(path).uid, owner, `${path} is owned by the user that runs postgres`)
    }
  })

  test('a cluster made with the old fixed password moves to the generated one on start', async ({
    assert,
  }) => {
    const home = freshHome(dirs)
    const dir = join(home, 'pg')
    const port = await freePort()
    const old = await startEmbeddedPostgres({
      dir,
      port,
      persistent: true,
      password: LEGACY_PASSWORD,
    })
    await old.stop()
    // As the embedded-postgres wrapper made them: cleartext `password` in pg_hba.
    const hba = join(old.dataDir, 'pg_hba.conf')
    writeFileSync(hba, readFileSync(hba, 'utf8').replaceAll('scram-sha-256', 'password'))

    const password = randomBytes(18).toString('base64url')
    const cluster = await startEmbeddedPostgres({
      dir,
      port,
      persistent: true,
      password,
      legacyPasswords: [LEGACY_PASSWORD],
    })
    clusters.push(cluster)
    assert.isTrue(cluster.passwordMigrated)
    assert.isTrue(await logsIn({ port }, password))
    assert.isFalse(await logsIn({ port }, LEGACY_PASSWORD))
    const admin = new pg.Client({ connectionString: cluster.adminUrl })
    await admin.connect()
    const { rows } = await admin.query(
      "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host'"
    )
    await admin.end()
    assert.deepEqual(
      rows.map((r) => r.auth_method),
      ['scram-sha-256'],
      'pg_hba no longer takes cleartext passwords'
    )
    await cluster.stop()

    // The next start needs no migration.
    const again = await startEmbeddedPostgres({
      dir,
      port,
      persistent: true,
      password,
      legacyPasswords: [LEGACY_PASSWORD],
    })
    clusters.push(again)
    assert.isFalse(again.passwordMigrated)
  })

  test('a port already taken ends in one E_EMBEDDED_PG error naming the cause and the fix', async ({
    assert,
  }) => {
    const home = freshHome(dirs)
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      await startEmbeddedPostgres({ dir: join(home, 'pg'), port, persistent: false, password: 'x' })
      assert.fail('should not start')
    } catch (error) {
      assert.equal((error as { code?: string }).code, 'E_EMBEDDED_PG')
      assert.include((error as Error).message, `port ${port} is taken: set EMBEDDED_PG_PORT`)
    } finally {
      blocker.close()
    }
  })
})

/*
| A clone in a private folder (0700, owned by root, as root's home is): the
| `postgres` user cannot enter it. Child process: before the fix the
| library's spawn failed with EACCES as an unhandled 'error' event.
*/
const PRIVATE_CLONE = `
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
const { startEmbeddedPostgres, freePort, defaultNativeDir } = await import(${MODULE})
const home = mkdtempSync(join(tmpdir(), 'rewrap-private-'))
const clone = join(home, 'clone')
mkdirSync(clone)
execFileSync('cp', ['-al', await defaultNativeDir(), join(clone, 'native')])
const out = { homeMode: (statSync(home).mode & 0o777).toString(8), runs: [] }
const query = async (cluster, sql) => {
  const client = new pg.Client({ connectionString: cluster.adminUrl })
  await client.connect()
  try { return (await client.query(sql)).rows } finally { await client.end() }
}
const external = []
try {
  for (const [persistent, round] of [[false, 1], [true, 1], [true, 2]]) {
    const dir = join(clone, persistent ? '.data/pg' : 'tmp/pg')
    const cluster = await startEmbeddedPostgres({
      dir, port: await freePort(), persistent, password: 'pw-fixed-in-this-run', nativeDir: join(clone, 'native'),
    })
    if (persistent && round === 1) await query(cluster, 'CREATE TABLE kept (id int)')
    const [row] = await query(cluster, "SELECT current_user AS who, to_regclass('kept') IS NOT NULL AS kept")
    const parent = join(cluster.dataDir, '..')
    const st = statSync(parent)
    if (persistent) external.push(parent)
    out.runs.push({ persistent, round, who: row.who, kept: row.kept, dataDir: cluster.dataDir,
      parentMode: (st.mode & 0o777).toString(8), parentUid: st.uid, notices: cluster.notices })
    await cluster.stop()
    if (!persistent) out.tmpRemoved = (() => { try { statSync(parent); return false } catch { return true } })()
  }
} finally {
  for (const path of external) rmSync(path, { recursive: true, force: true })
  rmSync(home, { recursive: true, force: true })
}
out.postgresUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }))
console.log(JSON.stringify(out))
`

/* A normal user: the cluster runs as that user, in a folder of its own. */
const AS_USER = `
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const { startEmbeddedPostgres, freePort } = await import(${MODULE})
const home = mkdtempSync(join(tmpdir(), 'rewrap-user-'))
try {
  const cluster = await startEmbeddedPostgres({
    dir: join(home, 'pg'), port: await freePort(), persistent: true, password: 'pw-' + Math.random(),
  })
  const st = statSync(join(home, 'pg'))
  const out = { uid: process.getuid(), notices: cluster.notices, dirUid: st.uid, dirMode: (st.mode & 0o777).toString(8), dataUid: statSync(cluster.dataDir).uid }
  await cluster.stop()
  console.log(JSON.stringify(out))
} finally {
  rmSync(home, { recursive: true, force: true })
}
`

test.group('embedded PostgreSQL: who can reach what', () => {
  test('as root, in a clone inside a private 0700 folder: tests and npm start both get a cluster run by "postgres"', async ({
    assert,
  }) => {
    const result = await runChild(PRIVATE_CLONE)
    assert.equal(result.code, 0, result.output)
    const out = result.json
    assert.equal(out.homeMode, '700')
    assert.lengthOf(out.runs, 3)
    for (const run of out.runs) {
      assert.equal(run.who, 'postgres')
      assert.equal(run.parentMode, '700', `${run.dataDir}'s folder is 0700`)
      assert.equal(run.parentUid, out.postgresUid, `${run.dataDir}'s folder is owned by postgres`)
      assert.isTrue(
        run.notices.some((n: string) => n.includes('binaries are linked into')),
        run.notices.join('\n')
      )
    }
    assert.isTrue(out.tmpRemoved, 'the throw-away cluster is removed at stop')
    const [first, second] = out.runs.filter((r: any) => r.persistent)
    assert.equal(first.dataDir, second.dataDir, 'the persistent cluster is found again')
    assert.isTrue(second.kept, 'and keeps its data')
    assert.match(first.dataDir, /^\/var\/lib\/rewrap\//)
  })
    .skip(!isRoot, 'needs root (the case is root in a private home)')
    .timeout(120_000)

  test('as a normal user: the cluster runs as that user, folders 0700 owned by it', async ({
    assert,
  }) => {
    const result = await runChild(AS_USER, { uid: NOBODY.uid, gid: NOBODY.gid })
    assert.equal(result.code, 0, result.output)
    assert.deepEqual(result.json, {
      uid: 65534,
      notices: [],
      dirUid: 65534,
      dirMode: '700',
      dataUid: 65534,
    })
  })
    .skip(
      !isRoot || !canReach(join(ROOT, 'package.json'), NOBODY, 'r'),
      'needs root, and a checkout the user nobody can read, to run a child as nobody'
    )
    .timeout(60_000)
})
