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
import { decodeKeystore } from '#app/governance/keystore'
import { rememberSecret, rememberToken } from '#tests/helpers/secrets'

/*
| `npm start` (bin/quickstart.ts) for real, in a child process, three times
| against a database of its own on the test server (DATABASE_URL), with its
| .env (ENV_PATH) and data folder (REWRAP_DATA_DIR) in a temp folder:
|  - a .env copied by hand from .env.example (0644) ends up 0600 with its
|    generated secrets;
|  - the second start reuses the stored token instead of minting another;
|  - a token file others could read is treated as leaked: new token, old
|    one revoked;
|  - dual control stays on and the demo approvers (a role authority, cto,
|    security_officer) are made once: keystores 0600 in a 0700 folder, their
|    credentials registered, the generated passphrase printed once (demo
|    only) with the commands of the approval flow, never in a log.
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
      // The test server's database is not the embedded one: ask for the demo approvers.
      REWRAP_DEMO_APPROVERS: 'on',
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

async function query(databaseUrl: string, sql: string) {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const result = await client.query(sql)
    return result.rows
  } finally {
    await client.end()
  }
}

/** The demo approvers as the database holds them, by name. */
async function demoApprovers(databaseUrl: string) {
  const rows = await query(
    databaseUrl,
    `SELECT a.name, a.aid, a.authority, c.role, c.said AS credential, c.issuer, c.revoked_at
       FROM approvers a LEFT JOIN credentials c ON c.subject = a.aid
      WHERE a.name LIKE 'demo-%' ORDER BY a.name`
  )
  return Object.fromEntries(rows.map((row: any) => [row.name, row]))
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

  test('a hand-copied 0644 .env gets its secrets at 0600; the token is kept 0600 and reused; a readable token file means a new token and the old one revoked; dual control on, demo approvers made once, their passphrase printed once', async ({
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

      // Dual control on, with demo approvers and the flow that uses them.
      const out = first.stdout()
      const passphrase = values.DEMO_APPROVER_PASSPHRASE
      assert.isAbove(passphrase?.length ?? 0, 20, 'a demo passphrase generated into .env')
      rememberSecret(passphrase, 'demo approver passphrase')
      assert.include(out, 'Dual control is ON')
      assert.include(out, 'DEMO ONLY')
      const printed = out.split('\n').filter((line) => line.includes(passphrase))
      assert.lengthOf(printed, 1, 'the passphrase is printed once')
      assert.match(printed[0], /demo only, shown this once/)
      const dir = join(home, 'data', 'demo-approvers')
      assert.equal(mode(dir), '700')
      for (const name of ['authority', 'cto', 'security_officer']) {
        assert.equal(mode(join(dir, `${name}.keystore`)), '600', name)
      }
      for (const line of [
        'npx node ace approval:request rotate --kek demo --json',
        `npx node ace approval:sign <said> --keystore ${join(dir, 'cto.keystore')}`,
        `npx node ace approval:sign <said> --keystore ${join(dir, 'security_officer.keystore')}`,
        'npx node ace rotate:kek demo --approval <said>',
      ]) {
        assert.include(out, line)
      }
      const demo = await demoApprovers(databaseUrl)
      assert.deepEqual(Object.keys(demo), ['demo-authority', 'demo-cto', 'demo-security_officer'])
      assert.isTrue(demo['demo-authority'].authority)
      for (const role of ['cto', 'security_officer']) {
        const holder = demo[`demo-${role}`]
        assert.isFalse(holder.authority)
        assert.equal(holder.role, role)
        assert.equal(holder.issuer, demo['demo-authority'].aid)
        assert.isNull(holder.revoked_at)
        // The printed passphrase opens the keystore of that very AID.
        const secrets = decodeKeystore(
          readFileSync(join(dir, `${role}.keystore`), 'utf8'),
          passphrase
        )
        assert.equal(secrets.aid, holder.aid)
      }
      const statusReport = await fetch(`${first.url}/rotations/status`, {
        headers: { authorization: `Bearer ${first.token}` },
      })
      const report = (await statusReport.json()) as { governance: { dualControl: string } }
      assert.equal(report.governance.dualControl, 'on')
      const stored = await query(
        databaseUrl,
        `SELECT count(*)::int AS n FROM (
           SELECT name AS t FROM approvers UNION ALL SELECT document FROM credentials
           UNION ALL SELECT event FROM key_events UNION ALL SELECT record FROM audit_events) x
          WHERE t LIKE '%${passphrase}%'`
      )
      assert.equal(stored[0].n, 0, 'the passphrase is nowhere in the database')
      // Dual control on from the start: the demo registry was made in bootstrap, each change
      // recorded as such (authority, cto + credential, security_officer + credential).
      const changes = await query(
        databaseUrl,
        `SELECT record::json -> 'a' ->> 'act' AS act,
                record::json -> 'a' -> 'data' ->> 'governance' AS governance
           FROM audit_events
          WHERE (record::json -> 'a' ->> 'act') IN ('approver.register', 'credential.register')
          ORDER BY seq`
      )
      assert.deepEqual(
        changes.map((row: any) => [row.act, row.governance]),
        [
          ['approver.register', 'bootstrap'],
          ['approver.register', 'bootstrap'],
          ['credential.register', 'bootstrap'],
          ['approver.register', 'bootstrap'],
          ['credential.register', 'bootstrap'],
        ]
      )
    } finally {
      await first.stop()
    }
    const demoBefore = await demoApprovers(databaseUrl)

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
      // The demo approvers are reused, the passphrase not printed again.
      assert.deepEqual(await demoApprovers(databaseUrl), demoBefore)
      const passphrase = parseEnv(readFileSync(envPath, 'utf8')).DEMO_APPROVER_PASSPHRASE
      assert.notInclude(second.stdout(), passphrase)
      assert.include(second.stdout(), 'DEMO_APPROVER_PASSPHRASE in .env')
      assert.notInclude(second.stdout(), '(created now)')
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
