/*
|--------------------------------------------------------------------------
| Test helpers: a throwaway CA, the Key Vault stand-in over HTTPS, and an
| azure-keyvault driver (the real SDK) that trusts that CA
|--------------------------------------------------------------------------
*/
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import logger from '@adonisjs/core/services/logger'
import { AzureKeyVaultServer, type AzureServerOptions } from '#kms/azure_server/azure_server'
import { AzureKeyVaultDriver, type AzureKeyVaultDriverOptions } from '#kms/drivers/azure_keyvault'
import { fastRetryDeps, randomId, type RecordingRetryDeps } from '#tests/helpers/transit'

const run = promisify(execFile)

/** A CA and a server certificate it signed (for 127.0.0.1 and localhost), as PEM. */
export interface TestTls {
  ca: string
  cert: string
  key: string
  /** Files of the same (for child processes: NODE_EXTRA_CA_CERTS, --tls-cert, --tls-key). */
  files: { ca: string; cert: string; key: string; dir: string }
}

let tls: Promise<TestTls> | undefined

/**
 * A throwaway CA and server certificate made with openssl, once per test
 * process (the files live in a temp directory until the process exits).
 */
export function testTls(): Promise<TestTls> {
  tls ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rewrap-azure-tls-'))
    const file = (name: string) => join(dir, name)
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    await run('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=Rewrap test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ])
    await run('openssl', [
      'req',
      '-new',
      ...ec,
      '-keyout',
      file('server.key'),
      '-out',
      file('server.csr'),
      '-subj',
      '/CN=localhost',
    ])
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-out',
      file('server.pem'),
      '-days',
      '2',
      '-extfile',
      await extFile(dir),
    ])
    const [ca, cert, key] = await Promise.all(
      ['ca.pem', 'server.pem', 'server.key'].map((name) => readFile(file(name), 'utf8'))
    )
    process.once('exit', () => void rm(dir, { recursive: true, force: true }))
    return {
      ca,
      cert,
      key,
      files: { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key'), dir },
    }
  })()
  return tls
}

async function extFile(dir: string) {
  const { writeFile } = await import('node:fs/promises')
  const path = join(dir, 'server.ext')
  await writeFile(
    path,
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n'
  )
  return path
}

/** A running stand-in. */
export interface AzureFixture {
  url: string
  token: string
  ca: string
  server: AzureKeyVaultServer
  close(): Promise<void>
}

/** Starts the Key Vault stand-in on a free loopback port with a random token. */
export async function startAzureServer(
  options: Partial<Omit<AzureServerOptions, 'tlsCert' | 'tlsKey'>> = {}
): Promise<AzureFixture> {
  const { ca, cert, key } = await testTls()
  const token = options.token ?? `test-${randomId(24)}`
  const server = new AzureKeyVaultServer({ logger, ...options, token, tlsCert: cert, tlsKey: key })
  await server.listen(0, '127.0.0.1')
  return { url: server.url, token, ca, server, close: () => server.close() }
}

/**
 * An AzureKeyVaultDriver (the real @azure/keyvault-keys over HTTPS) for
 * the fixture: its CA trusted, the challenge's resource not checked (the
 * host is not *.vault.azure.net), fast recorded retries, a large budget.
 */
export function azureDriverFor(
  fixture: Pick<AzureFixture, 'url' | 'token' | 'ca'>,
  options: Partial<AzureKeyVaultDriverOptions> = {}
): { driver: AzureKeyVaultDriver; retryDeps: RecordingRetryDeps } {
  const retryDeps = (options.retryDeps as RecordingRetryDeps | undefined) ?? fastRetryDeps()
  const driver = new AzureKeyVaultDriver({
    vaultUrl: fixture.url,
    token: fixture.token,
    ca: fixture.ca,
    disableChallengeResourceVerification: true,
    requestsPerSecond: 100_000,
    retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 200 },
    timeoutMs: 20_000,
    ...options,
    retryDeps,
  })
  return { driver, retryDeps }
}
