/*
|--------------------------------------------------------------------------
| `node ace kms:serve` as a real child process
|--------------------------------------------------------------------------
*/
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

/**
 * Spawns a transit `kms:serve` on `port` (killed at the test's cleanup) and
 * waits until it answers its health check; fails at once if it exits first.
 */
async function startServe(
  cleanup: (fn: () => void) => void,
  port: number,
  args: string[],
  extraEnv: Record<string, string> = {}
): Promise<{ child: Child; url: string }> {
  const child = spawnServe(args, extraEnv)
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
  return { child, url }
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
    const { child, url } = await startServe(
      cleanup,
      port,
      ['--port', String(port), '--host', '127.0.0.1'],
      {
        KMS_SERVE_TOKEN: token,
      }
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

  test('takes its token from --token-file, never from the command line', async ({
    assert,
    cleanup,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-serve-token-'))
    cleanup(() => rmSync(dir, { recursive: true, force: true }))
    const token = randomBytes(24).toString('base64url')
    const file = join(dir, 'token')
    writeFileSync(file, `${token}\n`, { mode: 0o600 })
    const port = await freePort()
    const { child, url } = await startServe(cleanup, port, [
      '--port',
      String(port),
      '--token-file',
      file,
    ])
    assert.notInclude(child.process.spawnargs.join(' '), token)
    const path = `${url}/v1/transit/keys/file-${randomId()}`
    const known = await fetch(path, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(known.status, 404)
    const wrong = await fetch(path, { headers: { 'x-vault-token': `${token}x` } })
    assert.equal(wrong.status, 403)
    child.process.kill('SIGTERM')
    const { code } = await exitWithin(child, 30_000)
    assert.equal(code, 0, child.output())
    assert.notInclude(child.output(), token)
    assert.notMatch(child.output(), /readable by other users/)
  })

  test('refuses a short token and --token on the command line, with one E_KMS_CONFIG line', async ({
    assert,
  }) => {
    const short = 'short-token-0123456789'
    // Hex: a base64url token may start with '-', which Ace would read as a flag.
    const argvToken = randomBytes(24).toString('hex')
    const shortChild = spawnServe(['--port', String(await freePort())], { KMS_SERVE_TOKEN: short })
    const argvChild = spawnServe(['--port', String(await freePort()), '--token', argvToken], {
      KMS_SERVE_TOKEN: randomBytes(24).toString('base64url'),
    })
    const [shortExit, argvExit] = await Promise.all([
      exitWithin(shortChild, 60_000),
      exitWithin(argvChild, 60_000),
    ])
    assert.equal(shortExit.code, 1, shortChild.output())
    assert.equal(argvExit.code, 1, argvChild.output())
    const lines = (child: Child) => child.output().trim().split('\n')
    assert.lengthOf(lines(shortChild), 1, shortChild.output())
    assert.match(lines(shortChild)[0], /E_KMS_CONFIG: .*is 22 characters; at least 24 are required/)
    assert.notInclude(shortChild.output(), short)
    assert.lengthOf(lines(argvChild), 1, argvChild.output())
    assert.match(lines(argvChild)[0], /E_KMS_CONFIG: .*--token is refused: .*\(ps\)/)
    assert.notInclude(argvChild.output(), argvToken)
  })
  test('--latency-ms delays every transit answer; a value out of range is refused with E_KMS_CONFIG', async ({
    assert,
    cleanup,
  }) => {
    const port = await freePort()
    const token = randomBytes(24).toString('base64url')
    const { child, url } = await startServe(
      cleanup,
      port,
      ['--port', String(port), '--latency-ms', '300'],
      {
        KMS_SERVE_TOKEN: token,
      }
    )
    assert.include(child.output(), '300 ms added to every answer')

    const { driver } = vaultDriverFor({ url, token })
    const name = `latency-${randomId()}`
    await driver.createKey(name)
    const deks = Array.from({ length: 50 }, () => randomBytes(32))
    // A lower bound only (a timer fires no sooner than asked): never flaky. A batch of 50 is
    // one call, so one delay.
    let sent = performance.now()
    const wrapped = await driver.wrap(name, deks)
    assert.isAtLeast(performance.now() - sent, 300)
    sent = performance.now()
    const unwrapped = await driver.unwrap(name, wrapped)
    assert.isAtLeast(performance.now() - sent, 300)
    assert.deepEqual(
      unwrapped.map((b) => b.toString('hex')),
      deks.map((b) => b.toString('hex'))
    )

    for (const [args, line] of [
      [['--latency-ms', '2.5'], /E_KMS_CONFIG: --latency-ms must be an integer from 0 to 60000/],
      [['--latency-ms', '60001'], /E_KMS_CONFIG: --latency-ms must be an integer from 0 to 60000/],
    ] as const) {
      const refused = spawnServe(['--port', String(await freePort()), ...args], {
        KMS_SERVE_TOKEN: token,
      })
      const { code } = await exitWithin(refused, 60_000)
      assert.equal(code, 1, refused.output())
      assert.match(refused.output(), line)
    }
  }).timeout(180_000)
})
