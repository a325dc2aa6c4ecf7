import { spawn } from 'node:child_process'
import { copyFileSync, chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import { waitFor } from '#tests/helpers/wait'
import pg from 'pg'
import { freePort, withDatabase } from '../../bin/embedded_postgres.js'
import { parseEnv } from '../../bin/dotenv.js'
import { rememberToken } from '#tests/helpers/secrets'

/*
| `npm start` (bin/quickstart.ts) for real, in a child process, three times
| against a database of its own on the test server (DATABASE_URL), with its
| .env (ENV_PATH) and data folder (REWRAP_DATA_DIR) in a temp folder:
|  - a .env copied by hand from .env.example (0644) ends up 0600 with its
|    generated secrets;
|  - the second start reuses the stored token instead of minting another;
|  - a token file others could read is treated as leaked: new token, old
|    one revoked.
*/

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEADLINE_MS = 150_000

interface Started {
  stdout: () => string
  token: string
  tokenId: string
  url: string
  stop: () => Promise<number | null>
}

async function startQuickstart(home: string, databaseUrl: string): Promise<Started> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import=@poppinss/ts-exec', 'bin/quickstart.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      ENV_PATH: home,
      REWRAP_DATA_DIR: join(home, 'data'),
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_FILE: process.env.LOG_FILE,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let output = ''
  child.stdout.on('data', (chunk) => ((stdout += chunk), (output += chunk)))
  child.stderr.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  let done = false
  void exited.then(() => (done = true))
  const url = `http://127.0.0.1:${port}`
  let token: string
  let tokenId: string
  try {
    await waitFor(
      async () => {
        if (!stdout.includes('Ctrl-C stops')) return false
        return fetch(`${url}/health/live`).then(
          (r) => r.ok,
          () => false
        )
      },
      {
        timeoutMs: DEADLINE_MS,
        what: 'the server',
        giveUp: () => done && 'quickstart exited early',
      }
    ).catch((error) => {
      throw new Error(`${error.message}:\n${output}`)
    })
    token = /export TOKEN=(\S+)/.exec(stdout)![1]
    rememberToken(token)
    tokenId = /access token #(\d+)/.exec(stdout)![1]
  } catch (error) {
    // Never leave a quickstart (and its server) behind a failed test.
    child.kill('SIGTERM')
    await exited
    throw error
  }
  return {
    stdout: () => stdout,
    token,
    tokenId,
    url,
    stop: async () => {
      child.kill('SIGTERM')
      return exited
    },
  }
}

async function status(url: string, token: string) {
  const response = await fetch(`${url}/entries/999999999`, {
    headers: { authorization: `Bearer ${token}` },
  })
  return response.status
}

function mode(path: string) {
  return (statSync(path).mode & 0o777).toString(8)
}

test.group('npm start (quickstart)', (group) => {
  const database = `rewrap_qs_${process.pid}`
  const adminUrl = process.env.TEST_ADMIN_PG_URL!
  let home = ''

  group.setup(async () => {
    home = mkdtempSync(join(tmpdir(), 'rewrap-qs-'))
    const admin = new pg.Client({ connectionString: adminUrl })
    await admin.connect()
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await admin.query(`CREATE DATABASE ${database}`)
    await admin.end()
    return async () => {
      const client = new pg.Client({ connectionString: adminUrl })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
      await client.end()
      rmSync(home, { recursive: true, force: true })
    }
  })

  test('a hand-copied 0644 .env gets its secrets at 0600; the token is kept 0600 and reused; a readable token file means a new token and the old one revoked', async ({
    assert,
  }) => {
    const envPath = join(home, '.env')
    copyFileSync(join(ROOT, '.env.example'), envPath)
    chmodSync(envPath, 0o644)
    const databaseUrl = withDatabase(adminUrl, database)

    const first = await startQuickstart(home, databaseUrl)
    try {
      assert.equal(mode(envPath), '600', '.env is closed to others once it holds secrets')
      const values = parseEnv(readFileSync(envPath, 'utf8'))
      for (const key of ['APP_KEY', 'KMS_ROOT_KEY', 'EMBEDDED_PG_PASSWORD']) {
        assert.isAbove(values[key]?.length ?? 0, 20, `${key} generated`)
      }
      const tokenFile = join(home, 'data', 'quickstart-token')
      assert.equal(mode(tokenFile), '600')
      assert.equal(mode(join(home, 'data')), '700')
      assert.equal(await status(first.url, first.token), 404, 'the token works')
      assert.include(first.stdout(), 'A new access token')
    } finally {
      await first.stop()
    }

    const second = await startQuickstart(home, databaseUrl)
    try {
      assert.equal(second.token, first.token, 'the stored token is reused')
      assert.equal(second.tokenId, first.tokenId)
      assert.include(second.stdout(), `Your access token #${first.tokenId}`)
      const client = new pg.Client({ connectionString: databaseUrl })
      await client.connect()
      const { rows } = await client.query(
        "SELECT count(*)::int AS n, count(expires_at)::int AS expiring FROM auth_access_tokens WHERE name = 'quickstart'"
      )
      await client.end()
      assert.deepEqual(rows[0], { n: 1, expiring: 1 }, 'one quickstart token, with an expiry')
    } finally {
      await second.stop()
    }

    chmodSync(join(home, 'data', 'quickstart-token'), 0o644)
    const third = await startQuickstart(home, databaseUrl)
    try {
      assert.notEqual(third.token, first.token)
      assert.include(third.stdout(), `#${first.tokenId}, is revoked`)
      assert.equal(await status(third.url, first.token), 401, 'the leaked token is revoked')
      assert.equal(await status(third.url, third.token), 404)
      assert.equal(mode(join(home, 'data', 'quickstart-token')), '600')
    } finally {
      await third.stop()
    }
  }).timeout(DEADLINE_MS * 3)
})

test.group('server boot: .env readable by others', () => {
  test(
    'warns once through the app logger when .env is group/world-readable ({mode}), not when 0600'
  )
    .with([
      { mode: '644', warns: true },
      { mode: '640', warns: true },
      { mode: '600', warns: false },
    ])
    .run(async ({ assert }, { mode: fileMode, warns }) => {
      const home = mkdtempSync(join(tmpdir(), 'rewrap-envperm-'))
      try {
        const envPath = join(home, '.env')
        copyFileSync(join(ROOT, '.env.example'), envPath)
        chmodSync(envPath, Number.parseInt(fileMode, 8))
        const logFile = join(home, 'server.log')
        const port = await freePort()
        const child = spawn(process.execPath, ['--import=@poppinss/ts-exec', 'bin/server.ts'], {
          cwd: ROOT,
          env: {
            PATH: process.env.PATH,
            ENV_PATH: home,
            APP_KEY: 'a'.repeat(43),
            PORT: String(port),
            HOST: '127.0.0.1',
            LOG_FILE: logFile,
          },
          stdio: 'ignore',
        })
        const exited = new Promise((resolve) => child.on('exit', resolve))
        const log = () => {
          try {
            return readFileSync(logFile, 'utf8')
          } catch {
            return ''
          }
        }
        try {
          await waitFor(
            () => log().includes('started HTTP server') && (!warns || log().includes('chmod 600')),
            { timeoutMs: DEADLINE_MS, what: 'the server' }
          ).catch((error) => {
            throw new Error(`${error.message}:\n${log()}`)
          })
        } finally {
          child.kill('SIGTERM')
          await exited
        }
        const warnings = log()
          .split('\n')
          .filter((line) => line.includes('is readable by other users'))
        assert.lengthOf(warnings, warns ? 1 : 0, log())
        if (warns) {
          const entry = JSON.parse(warnings[0])
          assert.equal(entry.level, 40, 'a warning')
          assert.equal(entry.path, envPath)
          assert.equal(entry.mode, fileMode)
        }
      } finally {
        rmSync(home, { recursive: true, force: true })
      }
    })
    .timeout(DEADLINE_MS)
})
