/*
|--------------------------------------------------------------------------
| Vault transport: redirects stay on the configured origin; no plain http
| off loopback
|--------------------------------------------------------------------------
|
| Real HTTP servers on loopback: the configured origin is a small proxy in
| front of the in-process transit server that redirects chosen requests;
| another origin records every request it gets (it must get none).
|
*/
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from '@japa/runner'
import { VaultKmsDriver } from '#kms/drivers/vault'
import { drivers } from '#kms/define_config'
import { kmsDetailOf } from '#kms/error_codes'
import { MAX_REDIRECTS } from '#kms/vault_transport'
import { spawnAce } from '#tests/helpers/ace_child'
import {
  randomId,
  startTransitServer,
  vaultDriverFor,
  type TransitFixture,
} from '#tests/helpers/transit'

interface Recorded {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

/** A loopback HTTP server; answers `handle`, records every request. */
async function startServer(
  handle: (req: Recorded, res: ServerResponse) => void | Promise<void>
): Promise<{ url: string; requests: Recorded[]; stop: () => Promise<void> }> {
  const requests: Recorded[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      const recorded = { method: req.method!, url: req.url!, headers: req.headers, body }
      requests.push(recorded)
      void handle(recorded, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  return { url: `http://127.0.0.1:${port}`, requests, stop }
}

/** Forwards a recorded request to the transit fixture and relays the answer. */
async function forward(
  fixture: TransitFixture,
  req: Recorded,
  res: ServerResponse,
  path = req.url
) {
  const upstream = await fetch(`${fixture.url}${path}`, {
    method: req.method,
    headers: { 'x-vault-token': String(req.headers['x-vault-token'] ?? '') },
    body: req.body || undefined,
  })
  res.writeHead(upstream.status, { 'content-type': 'application/json' })
  res.end(await upstream.text())
}

function redirect(res: ServerResponse, location: string, status = 307) {
  res.writeHead(status, { location })
  res.end()
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error> {
  try {
    await promise
  } catch (error) {
    if ((error as { code?: string }).code === code) return error as Error
    throw new Error(`expected ${code}, got ${(error as { code?: string }).code}: ${error}`)
  }
  throw new Error(`expected ${code}, but the call succeeded`)
}

test.group('vault transport: redirects', (group) => {
  let fixture: TransitFixture
  group.setup(async () => {
    fixture = await startTransitServer()
    return () => fixture.close()
  })

  test('a redirect to another origin is E_KMS_REDIRECT; that origin never gets the token or the DEKs', async ({
    assert,
    cleanup,
  }) => {
    const other = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"data":{"batch_results":[]}}')
    })
    cleanup(() => other.stop())
    const configured = await startServer((req, res) =>
      req.url.includes('/encrypt/') || req.url.includes('/keys/moved-')
        ? redirect(res, `${other.url}${req.url}`)
        : forward(fixture, req, res)
    )
    cleanup(() => configured.stop())
    const { driver, retryDeps } = vaultDriverFor({ url: configured.url, token: fixture.token })

    const name = `redirect-${randomId()}`
    await driver.createKey(name)
    const deks = [randomBytes(32), randomBytes(32)]
    const error = await rejectsWithCode(driver.wrap(name, deks), 'E_KMS_REDIRECT')
    assert.include(kmsDetailOf(error), other.url)
    assert.notInclude(error.message, fixture.token)
    assert.notInclude(error.message, other.url)
    // A GET is refused the same way, and neither is retried.
    await rejectsWithCode(driver.readKey(`moved-${randomId()}`), 'E_KMS_REDIRECT')
    assert.lengthOf(retryDeps.sleeps, 0)

    assert.deepEqual(other.requests, [])
    const encrypts = configured.requests.filter((r) => r.url.includes('/encrypt/'))
    assert.lengthOf(encrypts, 1)
    assert.include(encrypts[0].body, deks[0].toString('base64'))
  })

  test('a 307 on the configured origin is followed with its method and body', async ({
    assert,
    cleanup,
  }) => {
    const configured = await startServer((req, res) =>
      req.url.startsWith('/moved')
        ? forward(fixture, req, res, req.url.slice('/moved'.length))
        : redirect(res, `/moved${req.url}`)
    )
    cleanup(() => configured.stop())
    const { driver } = vaultDriverFor({ url: configured.url, token: fixture.token })
    const name = `same-origin-${randomId()}`
    await driver.createKey(name)
    const deks = [randomBytes(32)]
    const wrapped = await driver.wrap(name, deks)
    const [opened] = await driver.unwrap(name, wrapped)
    assert.equal(opened.toString('hex'), deks[0].toString('hex'))
    const encrypt = configured.requests.find((r) => r.url.startsWith('/moved/v1/transit/encrypt/'))
    assert.equal(encrypt?.method, 'POST')
  })

  test(`more than ${MAX_REDIRECTS} redirects on the configured origin is E_KMS_REDIRECT`, async ({
    assert,
    cleanup,
  }) => {
    const looping = await startServer((req, res) => redirect(res, req.url))
    cleanup(() => looping.stop())
    const { driver, retryDeps } = vaultDriverFor({ url: looping.url, token: fixture.token })
    const error = await rejectsWithCode(driver.readKey('loop'), 'E_KMS_REDIRECT')
    assert.include(kmsDetailOf(error), `more than ${MAX_REDIRECTS} redirects`)
    assert.lengthOf(looping.requests, MAX_REDIRECTS + 1)
    assert.lengthOf(retryDeps.sleeps, 0)
  })

  test('a 303 for a POST is E_KMS_REDIRECT (it would drop the body)', async ({
    assert,
    cleanup,
  }) => {
    const configured = await startServer((req, res) =>
      req.method === 'POST' ? redirect(res, req.url, 303) : forward(fixture, req, res)
    )
    cleanup(() => configured.stop())
    const { driver } = vaultDriverFor({ url: configured.url, token: fixture.token })
    const error = await rejectsWithCode(
      driver.createKey(`see-other-${randomId()}`),
      'E_KMS_REDIRECT'
    )
    assert.include(kmsDetailOf(error), 'status 303 for a POST request')
  })
})

test.group('vault transport: http only on loopback', () => {
  const driver = (endpoint: string, allowInsecureHttp?: boolean) =>
    new VaultKmsDriver({ endpoint, token: 'not-used', allowInsecureHttp })

  test('plain http:// off loopback is E_KMS_CONFIG unless allowed', ({ assert }) => {
    for (const endpoint of [
      'http://10.0.0.1:8200',
      'http://vault.example.com:8200',
      'http://127.0.0.1.example.com',
      'http://[fe80::1]:8200',
    ]) {
      try {
        driver(endpoint)
        assert.fail(`${endpoint} was accepted`)
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'E_KMS_CONFIG', endpoint)
        assert.include((error as Error).message, 'VAULT_ALLOW_INSECURE_HTTP=true')
      }
    }
    assert.throws(() => driver('ftp://vault.example.com'), /must be https/)
    assert.throws(() => driver('not a url'), /not a URL/)
    assert.throws(
      () => drivers.vault({ endpoint: 'http://10.0.0.1:8200', token: '' }),
      /plain http/
    )
    for (const endpoint of [
      'https://vault.example.com:8200',
      'http://127.0.0.1:8200',
      'http://127.8.9.10:8200',
      'http://localhost:8200',
      'http://[::1]:8200',
    ]) {
      assert.doesNotThrow(() => driver(endpoint), endpoint)
    }
    assert.doesNotThrow(() => driver('http://10.0.0.1:8200', true))
  })

  test('a loopback http:// address serves for real', async ({ assert, cleanup }) => {
    const fixture = await startTransitServer()
    cleanup(() => fixture.close())
    assert.match(fixture.url, /^http:\/\/127\.0\.0\.1:/)
    const { driver: loopback } = vaultDriverFor(fixture)
    const name = `loopback-${randomId()}`
    const info = await loopback.createKey(name)
    assert.equal(info.latestVersion, 1)
  })

  test('the app refuses to boot with a plain http:// VAULT_ADDR off loopback', async ({
    assert,
  }) => {
    const saved = process.env.VAULT_ADDR
    process.env.VAULT_ADDR = 'http://10.11.12.13:8200'
    let ace
    try {
      ace = spawnAce(['kek:list'])
    } finally {
      if (saved === undefined) delete process.env.VAULT_ADDR
      else process.env.VAULT_ADDR = saved
    }
    const code = await ace.exited
    assert.notEqual(code, 0)
    assert.include(ace.output(), 'the Vault address http://10.11.12.13:8200 is plain http://')
  })
})
