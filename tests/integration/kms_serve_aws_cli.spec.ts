/*
|--------------------------------------------------------------------------
| `node ace kms:serve --api aws-kms` as a real child process
|--------------------------------------------------------------------------
*/
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import { awsDriverFor } from '#tests/helpers/aws_kms'
import { freePort, randomId } from '#tests/helpers/transit'
import { waitFor } from '#tests/helpers/wait'

const ACE = fileURLToPath(new URL('../../ace.js', import.meta.url))
const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url))

function spawnServe(args: string[], extraEnv: Record<string, string>) {
  const env: Record<string, string> = { KMS_ROOT_KEY: process.env.KMS_ROOT_KEY!, ...extraEnv }
  for (const name of ['PATH', 'HOME', 'DATABASE_URL', 'APP_KEY', 'NODE_ENV']) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  const child = spawn(process.execPath, [ACE, 'kms:serve', '--api', 'aws-kms', ...args], {
    cwd: APP_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, output: () => output, exit }
}

function credentialsEnv() {
  const credentials = {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  }
  return {
    credentials,
    env: {
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
  }
}

async function listening(served: ReturnType<typeof spawnServe>, url: string) {
  await waitFor(
    async () => {
      const res = await fetch(url, { method: 'POST' }).catch(() => null)
      return res?.status === 403
    },
    {
      timeoutMs: 90_000,
      intervalMs: 100,
      what: 'kms:serve --api aws-kms to listen',
      giveUp: () => served.child.exitCode !== null && `exited early:\n${served.output()}`,
    }
  )
}

test.group('kms:serve --api aws-kms (child process)', () => {
  test('serves AWS KMS to @aws-sdk/client-kms with SigV4 and stops on SIGTERM', async ({
    assert,
    cleanup,
  }) => {
    const port = await freePort()
    const credentials = {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
    }
    const served = spawnServe(['--port', String(port)], {
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'ap-southeast-2',
    })
    cleanup(() => {
      if (served.child.exitCode === null) served.child.kill('SIGKILL')
    })
    const url = `http://127.0.0.1:${port}`
    await listening(served, url)
    assert.include(served.output(), `listening on ${url} (region ap-southeast-2)`)

    const fixture = { url, region: 'ap-southeast-2', credentials }
    const { driver } = awsDriverFor(fixture)
    const name = `cli-${randomId()}`
    await driver.createKey(name)
    const deks = [randomBytes(32), randomBytes(32)]
    const wrapped = await driver.wrap(name, deks)
    assert.match(wrapped[0], /^aws:v1:/)
    const opened = await driver.unwrap(name, wrapped)
    assert.deepEqual(
      opened.map((b) => b.toString('hex')),
      deks.map((b) => b.toString('hex'))
    )
    const wrongSecret = awsDriverFor({
      ...fixture,
      credentials: { ...credentials, secretAccessKey: 'wrong' },
    }).driver
    const denied = await wrongSecret.readKey(name).catch((e) => e)
    assert.equal(denied.code, 'E_KMS_DENIED')
    await driver.close()
    await wrongSecret.close()

    served.child.kill('SIGTERM')
    assert.equal(await served.exit, 0, served.output())
    assert.notInclude(served.output(), credentials.secretAccessKey)
    for (const dek of deks) assert.notInclude(served.output(), dek.toString('base64'))
  }).timeout(120_000)

  test('--state-file keeps keys across a restart, sealed under KMS_ROOT_KEY', async ({
    assert,
    cleanup,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-kms-state-'))
    cleanup(() => rmSync(dir, { recursive: true, force: true }))
    const stateFile = join(dir, 'keys.bin')
    const { credentials, env } = credentialsEnv()
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const fixture = { url, region: 'us-east-1', credentials }
    const args = ['--port', String(port), '--state-file', stateFile]

    const first = spawnServe(args, env)
    cleanup(() => void (first.child.exitCode === null && first.child.kill('SIGKILL')))
    await listening(first, url)
    const { driver } = awsDriverFor(fixture)
    const name = `state-${randomId()}`
    await driver.createKey(name)
    await driver.rotateKey(name)
    await driver.configureKey(name, { minDecryptionVersion: 2 })
    const deks = [randomBytes(32)]
    const wrapped = await driver.wrap(name, deks)
    const before = await driver.readKey(name)
    await driver.close()
    first.child.kill('SIGTERM')
    assert.equal(await first.exit, 0, first.output())

    assert.equal(statSync(stateFile).mode & 0o777, 0o600)
    const onDisk = readFileSync(stateFile)
    assert.notInclude(onDisk.toString('latin1'), name, 'sealed, not plain JSON')

    const second = spawnServe(args, env)
    cleanup(() => void (second.child.exitCode === null && second.child.kill('SIGKILL')))
    await listening(second, url)
    const again = awsDriverFor(fixture).driver
    assert.deepEqual(await again.readKey(name), before)
    const [opened] = await again.unwrap(name, wrapped)
    assert.equal(opened.toString('hex'), deks[0].toString('hex'))
    await again.close()
    second.child.kill('SIGTERM')
    assert.equal(await second.exit, 0, second.output())

    const wrongRoot = spawnServe(args, { ...env, KMS_ROOT_KEY: randomBytes(32).toString('base64') })
    assert.notEqual(await wrongRoot.exit, 0)
    assert.match(
      wrongRoot.output(),
      /E_KMS_CONFIG: KMS misconfigured: the --state-file does not open under KMS_ROOT_KEY/
    )
  }).timeout(180_000)

  test('refuses to start without AWS credentials in its environment', async ({ assert }) => {
    const port = await freePort()
    const served = spawnServe(['--port', String(port)], {})
    assert.notEqual(await served.exit, 0)
    assert.match(
      served.output(),
      /E_KMS_CONFIG: KMS misconfigured: kms:serve --api aws-kms needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/
    )
  }).timeout(120_000)

  test('--latency-ms delays every answer; a value out of range is refused with E_KMS_CONFIG', async ({
    assert,
    cleanup,
  }) => {
    const port = await freePort()
    const { credentials, env } = credentialsEnv()
    const served = spawnServe(['--port', String(port), '--latency-ms', '300'], env)
    cleanup(() => void (served.child.exitCode === null && served.child.kill('SIGKILL')))
    const url = `http://127.0.0.1:${port}`
    await listening(served, url)
    assert.include(served.output(), '300 ms added to every answer')
    const { driver } = awsDriverFor({ url, region: 'us-east-1', credentials })
    cleanup(() => driver.close())
    const sent = performance.now()
    assert.isNull(await driver.readKey(`latency-${randomId()}`))
    // A lower bound only (a timer fires no sooner than asked): never flaky.
    assert.isAtLeast(performance.now() - sent, 300)

    for (const [args, line] of [
      [['--latency-ms', '2.5'], /E_KMS_CONFIG: --latency-ms must be an integer from 0 to 60000/],
      [['--latency-ms', '60001'], /E_KMS_CONFIG: --latency-ms must be an integer from 0 to 60000/],
    ] as const) {
      const refused = spawnServe(['--port', String(await freePort()), ...args], env)
      assert.equal(await refused.exit, 1)
      assert.match(refused.output(), line)
    }
  }).timeout(180_000)
})
