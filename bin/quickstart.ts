/*
|--------------------------------------------------------------------------
| npm start: the app on its embedded defaults
|--------------------------------------------------------------------------
|
| 1. .env from .env.example, APP_KEY and KMS_ROOT_KEY generated once;
| 2. DATABASE_URL unset → embedded PostgreSQL under ./.data/pg;
| 3. migrations, a `demo` KEK, an access token printed once;
| 4. the HTTP server (bin/server.ts) until Ctrl-C.
|
| Every step is idempotent: running it again reuses what exists.
|
*/
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { startEmbeddedPostgres, withDatabase, type EmbeddedCluster } from './embedded_postgres.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const envPath = `${root}.env`
const ace = `${root}ace.js`

function say(line: string) {
  process.stdout.write(`${line}\n`)
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*)\s*$/.exec(line)
    if (match) out[match[1]] = match[2].replace(/^['"]|['"]$/g, '')
  }
  return out
}

/** .env with generated keys (kept once written). */
function ensureEnvFile(): Record<string, string> {
  let text = existsSync(envPath)
    ? readFileSync(envPath, 'utf8')
    : readFileSync(`${root}.env.example`, 'utf8')
  const generate: Record<string, () => string> = {
    APP_KEY: () => randomBytes(32).toString('base64url'),
    KMS_ROOT_KEY: () => randomBytes(32).toString('base64'),
  }
  for (const [key, make] of Object.entries(generate)) {
    const pattern = new RegExp(`^${key}=.*$`, 'm')
    const current = parseEnv(text)[key]
    if (current) continue
    text = pattern.test(text)
      ? text.replace(pattern, `${key}=${make()}`)
      : `${text.trimEnd()}\n${key}=${make()}\n`
    say(`• generated ${key} into .env`)
  }
  writeFileSync(envPath, text, { mode: 0o600 })
  return parseEnv(text)
}

function runAce(args: string[], env: NodeJS.ProcessEnv, capture = false) {
  const result = spawnSync(process.execPath, [ace, ...args], {
    env,
    stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
  })
  if (result.status !== 0) {
    throw new Error(`node ace ${args[0]} failed (exit ${result.status})`)
  }
  return result.stdout
}

async function ensureDatabase(adminUrl: string, name: string) {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
  if (!rowCount) await client.query(`CREATE DATABASE ${name}`)
  await client.end()
}

const fileEnv = ensureEnvFile()
const env: NodeJS.ProcessEnv = { ...fileEnv, ...process.env }
let cluster: EmbeddedCluster | undefined

if (!env.DATABASE_URL) {
  const port = Number(env.EMBEDDED_PG_PORT ?? 54329)
  say(`• starting embedded PostgreSQL on 127.0.0.1:${port} (data in .data/pg)`)
  cluster = await startEmbeddedPostgres({ dir: `${root}.data/pg`, port, persistent: true })
  await ensureDatabase(cluster.adminUrl, 'rewrap')
  env.DATABASE_URL = withDatabase(cluster.adminUrl, 'rewrap')
}

let server: ReturnType<typeof spawn> | undefined
async function shutdown(code: number) {
  server?.kill('SIGTERM')
  if (cluster) await cluster.stop().catch(() => {})
  process.exit(code)
}
process.on('SIGINT', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))

try {
  say('• running migrations')
  runAce(['migration:run', '--force'], env)
  runAce(['kek:create', 'demo', '--if-missing'], env)
  const tokenJson = runAce(
    [
      'token:create',
      '--name',
      'quickstart',
      '--abilities',
      'entries:read,entries:write,rotation:read,rotation:admin',
      '--json',
    ],
    env,
    true
  )
  const { token } = JSON.parse(tokenJson.trim().split('\n').pop()!)
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
    `An access token with every ability (shown once; create more with "npx node ace token:create"):`
  )
  say(`  export TOKEN=${token}`)
  say(`Try:`)
  say(
    `  curl -s -X POST ${url}/entries -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"kek":"demo","data":{"hello":"world"}}'`
  )
  say(`  curl -s ${url}/entries/1 -H "Authorization: Bearer $TOKEN"`)
  say(`  npx node ace demo:seed --kek demo --rows 100000 && npx node ace rotate:kek demo`)
  say('Ctrl-C stops the server (and the embedded database).')
  say('')
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`)
  await shutdown(1)
}
