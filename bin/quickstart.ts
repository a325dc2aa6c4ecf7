/*
|--------------------------------------------------------------------------
| npm start: the app on its embedded defaults
|--------------------------------------------------------------------------
|
| 1. .env from .env.example; APP_KEY, KMS_ROOT_KEY and EMBEDDED_PG_PASSWORD
|    generated once (the file is written with mode 0600);
| 2. DATABASE_URL unset → embedded PostgreSQL under ./.data/pg (as root,
|    where the `postgres` user can reach it: see bin/pg_placement.ts);
| 3. migrations, a `demo` KEK, an access token kept in
|    .data/quickstart-token (0600) and reused while valid;
| 4. dual control stays on: on the embedded database (or with
|    REWRAP_DEMO_APPROVERS=on; never with NODE_ENV=production) a demo role
|    authority and two demo approvers (cto, security_officer), keystores in
|    .data/demo-approvers (0600, folder 0700) sealed with a generated
|    DEMO_APPROVER_PASSPHRASE (.env; printed once, when generated), with
|    the commands that approve and run a rotation;
| 5. the HTTP server (bin/server.ts) until Ctrl-C.
|
| Every step is idempotent: running it again reuses what exists. A failure
| ends with one line `E_CODE: why and what to do`, exit code 1.
|
| ENV_PATH (as AdonisJS reads it) moves .env; REWRAP_DATA_DIR moves .data.
|
*/
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync } from 'node:fs'
import { isAbsolute, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { ensureEnvSecrets } from './dotenv.js'
import {
  LEGACY_PASSWORD,
  startEmbeddedPostgres,
  withDatabase,
  type EmbeddedCluster,
} from './embedded_postgres.js'
import { quickstartToken, type ListedToken, type StoredToken } from './quickstart_token.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const envPath = resolve(root, process.env.ENV_PATH ?? '', '.env')
const dataDir = resolve(root, process.env.REWRAP_DATA_DIR ?? '.data')
const ace = `${root}ace.js`
const ALL_ABILITIES = 'entries:read,entries:write,rotation:read,rotation:admin'

function say(line: string) {
  process.stdout.write(`${line}\n`)
}

function runAce(args: string[], env: NodeJS.ProcessEnv, capture = false) {
  const result = spawnSync(process.execPath, [ace, ...args], {
    env,
    stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
  })
  if (result.status !== 0) {
    const line = capture ? result.stdout.trim().split('\n').pop() : ''
    throw new Error(`node ace ${args[0]} failed (exit ${result.status}) ${line ?? ''}`.trim())
  }
  return result.stdout
}

/** A path as the user can type it from here (relative when below the working directory). */
function shown(path: string) {
  const rel = relative(process.cwd(), path)
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}

type DemoApprovers = {
  dir: string
  approvers: Array<{ role: string; aid: string; keystore: string }>
  created: string[]
}

/**
 * The demo approvers (demo:approvers, idempotent) and the lines that show
 * the dual-control flow. The passphrase is printed only when generated now.
 */
function demoGovernance(env: NodeJS.ProcessEnv, embedded: boolean): string[] {
  if (env.DUAL_CONTROL === 'off') {
    return [
      'Dual control is OFF (DUAL_CONTROL=off in the environment or .env): master-key acts run without approvals.',
      '  For development only: remove DUAL_CONTROL=off (on is the default) and restart.',
      '  npx node ace rotate:kek demo',
    ]
  }
  const wanted = env.REWRAP_DEMO_APPROVERS ?? (embedded ? 'on' : 'off')
  if (wanted !== 'on' || env.NODE_ENV === 'production') {
    return [
      'Dual control is ON: rotations need approvals from a cto and a security_officer.',
      '  Set up approvers and role credentials: docs/governance.md (REWRAP_DEMO_APPROVERS=on makes demo ones).',
    ]
  }
  const { values, generated } = ensureEnvSecrets(envPath, `${root}.env.example`, {
    DEMO_APPROVER_PASSPHRASE: () => randomBytes(18).toString('base64url'),
  })
  const passphrase = process.env.DEMO_APPROVER_PASSPHRASE ?? values.DEMO_APPROVER_PASSPHRASE
  const demo = lastJson<DemoApprovers>(
    runAce(
      ['demo:approvers', '--dir', resolve(dataDir, 'demo-approvers'), '--json'],
      { ...env, REWRAP_KEYSTORE_PASSPHRASE: passphrase },
      true
    )
  )
  const keystore = (role: string) => shown(demo.approvers.find((a) => a.role === role)!.keystore)
  const lines = [
    'Dual control is ON: a rotation needs two approvals, a cto and a security_officer.',
    `DEMO ONLY: a demo role authority and two demo approvers, keystores in ${shown(demo.dir)} (mode 0600)${demo.created.length > 0 ? ' (created now)' : ''}.`,
  ]
  if (generated.includes('DEMO_APPROVER_PASSPHRASE')) {
    lines.push(
      `  Their keystore passphrase (demo only, shown this once; kept in .env as DEMO_APPROVER_PASSPHRASE): ${passphrase}`
    )
  } else {
    lines.push('  Their keystore passphrase: DEMO_APPROVER_PASSPHRASE in .env (demo only).')
  }
  lines.push(
    '  Approve and run a rotation of "demo" (approval:sign asks for the passphrase):',
    '    npx node ace approval:request rotate --kek demo --json     # prints { "said": … }',
    `    npx node ace approval:sign <said> --keystore ${keystore('cto')}`,
    `    npx node ace approval:sign <said> --keystore ${keystore('security_officer')}`,
    '    npx node ace rotate:kek demo --approval <said>'
  )
  return lines
}

function lastJson<T>(output: string): T {
  return JSON.parse(output.trim().split('\n').pop()!)
}

async function ensureDatabase(adminUrl: string, name: string) {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
  if (!rowCount) await client.query(`CREATE DATABASE ${name}`)
  await client.end()
}

let cluster: EmbeddedCluster | undefined
let server: ReturnType<typeof spawn> | undefined
let stopping = false
async function shutdown(code: number) {
  if (stopping) return
  stopping = true
  // The server first (it finishes its requests), then the database under it.
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((done) => server!.once('exit', done))
    server.kill('SIGTERM')
    await Promise.race([exited, new Promise((done) => setTimeout(done, 15_000))])
  }
  if (cluster) await cluster.stop().catch(() => {})
  process.exit(code)
}
process.on('SIGINT', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))

try {
  const { values, generated } = ensureEnvSecrets(envPath, `${root}.env.example`, {
    APP_KEY: () => randomBytes(32).toString('base64url'),
    KMS_ROOT_KEY: () => randomBytes(32).toString('base64'),
    EMBEDDED_PG_PASSWORD: () => randomBytes(24).toString('base64url'),
    AUDIT_SIGNING_SEED: () => randomBytes(32).toString('base64url'),
  })
  for (const key of generated) say(`• generated ${key} into .env (mode 0600)`)
  const env: NodeJS.ProcessEnv = { ...values, ...process.env }
  const embedded = !env.DATABASE_URL
  // Only demo:approvers gets it (as its keystore passphrase): not the server, not other commands.
  delete env.DEMO_APPROVER_PASSPHRASE

  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  // As root an older install may keep its cluster in .data/pg, which `postgres` must enter.
  if (process.getuid?.() !== 0) chmodSync(dataDir, 0o700)

  if (!env.DATABASE_URL) {
    const port = Number(env.EMBEDDED_PG_PORT ?? 54329)
    say(`• starting embedded PostgreSQL on 127.0.0.1:${port}`)
    cluster = await startEmbeddedPostgres({
      dir: resolve(dataDir, 'pg'),
      port,
      persistent: true,
      password: env.EMBEDDED_PG_PASSWORD!,
      legacyPasswords: [LEGACY_PASSWORD],
    })
    for (const notice of cluster.notices) say(`• ${notice}`)
    say(`• data in ${cluster.dataDir}`)
    if (cluster.passwordMigrated) {
      say('• moved the database superuser off the old fixed password (now EMBEDDED_PG_PASSWORD)')
    }
    await ensureDatabase(cluster.adminUrl, 'rewrap')
    env.DATABASE_URL = withDatabase(cluster.adminUrl, 'rewrap')
  }

  say('• running migrations')
  runAce(['migration:run', '--force'], env)
  runAce(['kek:create', 'demo', '--if-missing'], env)
  const access = await quickstartToken(resolve(dataDir, 'quickstart-token'), {
    list: async () =>
      lastJson<{ tokens: ListedToken[] }>(runAce(['token:list', '--json'], env, true)).tokens,
    create: async () => {
      const created = lastJson<StoredToken>(
        runAce(
          ['token:create', '--name', 'quickstart', '--abilities', ALL_ABILITIES, '--json'],
          env,
          true
        )
      )
      // Its creation time tells this token from another with the same id (after a reset).
      const listed = lastJson<{ tokens: ListedToken[] }>(
        runAce(['token:list', '--json'], env, true)
      )
      const createdAt = listed.tokens.find((t) => t.tokenId === created.tokenId)?.createdAt ?? null
      return {
        tokenId: created.tokenId,
        createdAt,
        expiresAt: created.expiresAt,
        token: created.token,
      }
    },
    revoke: async (id) => void runAce(['token:revoke', id, '--json'], env, true),
    now: () => new Date(),
  })
  const governance = demoGovernance(env, embedded)
  const host = env.HOST ?? '127.0.0.1'
  const port = env.PORT ?? '3333'
  const url = `http://${host}:${port}`
  server = spawn(process.execPath, ['--import=@poppinss/ts-exec', `${root}bin/server.ts`], {
    env,
    stdio: 'inherit',
  })
  server.on('exit', (code) => void shutdown(code ?? 1))
  say('')
  say(`Rewrap is starting at ${url}`)
  say(
    `${access.reused ? 'Your' : 'A new'} access token #${access.tokenId} with every ability, expiring ${access.expiresAt ?? 'never'} (kept in ${resolve(dataDir, 'quickstart-token')}, mode 0600):`
  )
  if (access.revoked) {
    say(`  (the previous one, #${access.revoked.tokenId}, is revoked: ${access.revoked.reason})`)
  }
  say(`  export TOKEN=${access.token}`)
  if (access.legacyIds.length > 0) {
    say(
      `  Older never-expiring "quickstart" tokens exist (#${access.legacyIds.join(', #')}): "npx node ace token:list", then "npx node ace token:revoke <id>"`
    )
  }
  say(`Operator console: ${url}/console (paste the token once)`)
  say(`Try:`)
  say(
    `  curl -s -X POST ${url}/entries -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"kek":"demo","data":{"hello":"world"}}'`
  )
  say(`  curl -s ${url}/entries/1 -H "Authorization: Bearer $TOKEN"`)
  say(`  npx node ace demo:seed --kek demo --rows 100000`)
  for (const line of governance) say(line)
  say('Ctrl-C stops the server (and the embedded database).')
  say('')
} catch (error) {
  const err = error as { code?: string; message?: string }
  process.stderr.write(
    `${err.code?.startsWith('E_') ? err.code : 'E_QUICKSTART'}: ${err.message}\n`
  )
  await shutdown(1)
}
