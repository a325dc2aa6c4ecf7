/*
|--------------------------------------------------------------------------
| `node ace kms:serve` as a real child process
|--------------------------------------------------------------------------
*/
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import { freePort, randomId, vaultDriverFor } from '#tests/helpers/transit'
import { waitFor } from '#tests/helpers/wait'
import { rejectsWith } from '#tests/helpers/errors'

const ACE = fileURLToPath(new URL('../../ace.js', import.meta.url))
const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Child {
  process: ChildProcess
  output: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Spawns `node ace kms:serve …` with only the env it needs (never the
 * parent's KMS_SERVE_TOKEN).
 */
function spawnServe(args: string[], extraEnv: Record<string, string> = {}): Child {
  const env: Record<string, string> = { ...extraEnv }
  for (const name of [
    'PATH',
    'HOME',
    'DATABASE_URL',
    'APP_KEY',
    'KMS_ROOT_KEY',
    'NODE_ENV',
    'LOG_FILE',
    'LOG_LEVEL',
  ]) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  const child = spawn(process.execPath, [ACE, 'kms:serve', ...args], {
    cwd: APP_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal }))
  )
  return { process: child, output: () => output, exit }
}

/** Resolves with the exit, or rejects after the deadline. */
function exitWithin(child: Child, timeoutMs: number) {
  let timer: NodeJS.Timeout
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`kms:serve did not exit within ${timeoutMs} ms:\n${child.output()}`)),
      timeoutMs
    )
  })
  return Promise.race([child.exit, deadline]).finally(() => clearTimeout(timer))
}

test.group('kms:serve (child process)', () => {
  test('serves Vault Transit over HTTP and stops on SIGTERM', async ({ assert, cleanup }) => {
    const port = await freePort()
    const token = `cli-${randomBytes(24).toString('base64url')}`
    const child = spawnServe(['--port', String(port), '--host', '127.0.0.1'], {
      KMS_SERVE_TOKEN: token,
    })
    cleanup(() => {
      if (child.process.exitCode === null) child.process.kill('SIGKILL')
    })
    let exited = false
    void child.exit.then(() => (exited = true))

    const url = `http://127.0.0.1:${port}`
    await waitFor(
      async () => {
        if (exited) throw new Error(`kms:serve exited early:\n${child.output()}`)
        const res = await fetch(`${url}/v1/sys/health`)
        return res.status === 200
      },
      { timeoutMs: 90_000, intervalMs: 100, what: 'kms:serve to listen' }
    )
    assert.include(child.output(), `listening on ${url}`)
    assert.notInclude(child.output(), token)

    const { driver } = vaultDriverFor({ url, token })
    const name = `cli-${randomId()}`
    const info = await driver.createKey(name)
    assert.equal(info.latestVersion, 1)
    const deks = [randomBytes(32), randomBytes(32)]
    const wrapped = await driver.wrap(name, deks)
    assert.match(wrapped[0], /^vault:v1:/)
    const unwrapped = await driver.unwrap(name, wrapped)
    assert.deepEqual(
      unwrapped.map((b) => b.toString('hex')),
      deks.map((b) => b.toString('hex'))
    )
    const denied = vaultDriverFor({ url, token: 'wrong' }).driver
    await rejectsWith(denied.readKey(name), 'E_KMS_DENIED')

    child.process.kill('SIGTERM')
    const { code, signal } = await exitWithin(child, 30_000)
    assert.equal(code, 0, child.output())
    assert.isNull(signal)
    assert.include(child.output(), 'stopped')
    for (const dek of deks) assert.notInclude(child.output(), dek.toString('base64'))
  })

  test('refuses to start without a token', async ({ assert }) => {
    const port = await freePort()
    const child = spawnServe(['--port', String(port)])
    const { code } = await exitWithin(child, 60_000)
    assert.notEqual(code, 0)
    assert.match(child.output(), /without a token/)
    assert.match(child.output(), /KMS_SERVE_TOKEN/)
  })
})
