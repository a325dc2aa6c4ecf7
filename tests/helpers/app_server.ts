/*
|--------------------------------------------------------------------------
| A second app instance (bin/server.ts) in its own process
|--------------------------------------------------------------------------
*/
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { spawnAce } from '#tests/helpers/ace_child'
import { freePort } from '#tests/helpers/transit'
import { waitFor } from '#tests/helpers/wait'

const SERVER = fileURLToPath(new URL('../../bin/server.ts', import.meta.url))

/** A running HTTP server child. */
export interface AppServer {
  base: string
  child: ChildProcess
  output(): string
  stop(): Promise<void>
}

/**
 * Starts bin/server.ts on a free port with the test run's environment plus
 * `env` (e.g. another DATABASE_URL); resolves once /health/live answers.
 */
export async function startAppServer(env: Record<string, string> = {}): Promise<AppServer> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import=@poppinss/ts-exec', SERVER], {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const base = `http://127.0.0.1:${port}`
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`server exited: ${output.slice(-500)}`)
      return fetch(`${base}/health/live`).then(
        (r) => r.ok,
        () => false
      )
    },
    { timeoutMs: 60_000, what: 'the app server' }
  )
  return {
    base,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

/**
 * A bearer token with `abilities`, made by `token:create` in a child (on the
 * database of `env`).
 */
export async function tokenVia(
  env: Record<string, string>,
  abilities = ['entries:read', 'entries:write']
): Promise<string> {
  const ace = spawnAce(
    ['token:create', '--name', 'reliability', '--abilities', abilities.join(','), '--json'],
    env
  )
  const code = await ace.exited
  if (code !== 0) throw new Error(`token:create failed: ${ace.output().slice(-300)}`)
  const line = ace.output().trim().split('\n').pop()!
  return JSON.parse(line).token
}

/**
 * Writers PUTting entries through the HTTP server until `stop()`: each owns
 * its ids, retries a refused or failed PUT with the same value until it is
 * acknowledged, and remembers the last acknowledged value of every id.
 */
export function startWriters(server: { base: string }, token: string, ids: string[], count = 3) {
  let running = true
  const acked = new Map<string, unknown>()
  const stats = { acked: 0, retried: 0, statuses: {} as Record<number, number> }
  const writer = async (w: number) => {
    const mine = ids.filter((_, i) => i % count === w)
    for (let n = 0; running; n++) {
      const id = mine[n % mine.length]
      const data = { writer: w, n, id }
      for (;;) {
        const response = await fetch(`${server.base}/entries/${id}`, {
          method: 'PUT',
          headers: { 'authorization': `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ data }),
          signal: AbortSignal.timeout(10_000),
        }).catch(() => null)
        const status = response?.status ?? 0
        await response?.arrayBuffer().catch(() => null)
        stats.statuses[status] = (stats.statuses[status] ?? 0) + 1
        if (status === 200) break
        // Unacknowledged (refused, failed, timed out): maybe written, maybe not —
        // the same value again until it is acknowledged, even when stopping.
        stats.retried++
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      acked.set(id, data)
      stats.acked++
    }
  }
  const all = Promise.all(Array.from({ length: count }, (_, w) => writer(w)))
  return {
    acked,
    stats,
    stop: async () => {
      running = false
      await all
    },
  }
}
