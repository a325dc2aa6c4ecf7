/*
|--------------------------------------------------------------------------
| Azure Key Vault keys API stand-in (`kms:serve --api azure-keyvault`)
|--------------------------------------------------------------------------
|
| HTTPS only (the SDK refuses bearer tokens over plain HTTP). Serves
| `/keys…?api-version=…` (create, rotate, get, list keys and versions,
| update, wrapkey, unwrapkey; handlers.ts) with Key Vault's status codes
| and `{"error":{…}}` bodies (wire.ts).
|
| Authentication is Key Vault's challenge flow: a request without a
| bearer token gets 401 with `WWW-Authenticate: Bearer authorization=…,
| resource=…`; the SDK then asks its credential for a token of that
| resource and sends it. The token is compared with the configured one in
| constant time. Clients on a host other than *.vault.azure.net set
| `disableChallengeResourceVerification`.
|
| Never logged, never in an error: the token, bodies (DEKs), key
| material. The request log holds method, path and status only.
|
*/
import { closeServer, listenOn, serverUrl } from '#kms/stand_in_server'
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { RandomBytes } from '#crypto/aead'
import { AzureFaultQueue, type AzureFault } from '#kms/azure_server/faults'
import * as handlers from '#kms/azure_server/handlers'
import { StandInKeyStore } from '#kms/azure_server/key_store'
import { AzureHttpError, badParameter } from '#kms/azure_server/wire'
import { parseJsonObject, readBody } from '#kms/transit_server/request_body'
import { assertTokenStrength, tokensMatch } from '#kms/transit_server/token'
import type { RequestLogEntry, TransitLogger } from '#kms/transit_server/types'

/** Options of the stand-in. */
export interface AzureServerOptions {
  /** The bearer token clients must present. */
  token: string
  /** PEM certificate chain and key of the HTTPS listener. */
  tlsCert: string | Buffer
  tlsKey: string | Buffer
  /** Unix seconds; injected for tests. */
  now?: () => number
  random?: RandomBytes
  logger?: TransitLogger
  maxBodyBytes?: number
  /**
   * TEST-ONLY: more bearer tokens, each allowed only some data actions
   * (as an Azure RBAC role would), to prove least-privilege roles.
   */
  limitedTokens?: Record<string, DataAction[]>
}

/** Key Vault data actions (`Microsoft.KeyVault/vaults/keys/<action>`). */
export type DataAction =
  'read' | 'create/action' | 'update/action' | 'wrap/action' | 'unwrap/action'

const CHALLENGE =
  'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", resource="https://vault.azure.net"'
const REQUEST_LOG_LIMIT = 10_000
const KEY_NAME = /^[0-9A-Za-z-]{1,127}$/

/**
 * The stand-in server. `listen()` to start, `close()` to stop.
 */
export class AzureKeyVaultServer {
  /** Answered requests (method, path, status), oldest first; bounded. */
  readonly requestLog: RequestLogEntry[] = []
  /** Added before every answer (ms): latency injection. */
  latencyMs = 0

  #server: Server
  #store: StandInKeyStore
  #token: string
  #now: () => number
  #logger?: TransitLogger
  #maxBodyBytes: number
  #faults = new AzureFaultQueue()
  #limited: Map<string, Set<DataAction>>

  constructor(options: AzureServerOptions) {
    assertTokenStrength(options.token)
    this.#token = options.token
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000))
    this.#store = new StandInKeyStore(options.random ?? randomBytes, this.#now)
    this.#logger = options.logger
    this.#maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024
    this.#limited = new Map(
      Object.entries(options.limitedTokens ?? {}).map(([token, actions]) => [
        token,
        new Set(actions),
      ])
    )
    this.#server = createServer({ cert: options.tlsCert, key: options.tlsKey }, (req, res) => {
      void this.#handle(req, res)
    })
  }

  /** `https://host:port` once listening. */
  get url(): string {
    return serverUrl(this.#server, 'https')
  }

  /** Starts listening. */
  listen(port: number, host = '127.0.0.1'): Promise<void> {
    return listenOn(this.#server, port, host)
  }

  /** Stops listening and drops open connections. */
  close(): Promise<void> {
    return closeServer(this.#server)
  }

  /** TEST-ONLY: answers the next matching requests with these failures. */
  injectFaults(faults: AzureFault[]) {
    this.#faults.add(faults)
  }

  clearFaults() {
    this.#faults.clear()
  }

  get pendingFaults() {
    return this.#faults.pending
  }

  async #handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'https://stand-in')
    const method = req.method ?? 'GET'
    let status = 500
    try {
      const body = await this.#route(req, method, url)
      status = 200
      this.#send(res, 200, body)
    } catch (error) {
      const failure =
        error instanceof AzureHttpError
          ? error
          : typeof (error as { status?: unknown })?.status === 'number'
            ? new AzureHttpError(
                (error as { status: number }).status,
                'BadParameter',
                'The request body could not be read.'
              )
            : new AzureHttpError(500, 'InternalServerError', 'An unexpected error occurred.')
      if (failure.status === 500 && !(error instanceof AzureHttpError)) {
        this.#logger?.error({ err: (error as Error)?.name }, 'azure stand-in: request failed')
      }
      status = failure.status
      this.#send(res, failure.status, failure.body(), failure.headers)
    } finally {
      this.requestLog.push({ method, path: url.pathname, status })
      if (this.requestLog.length > REQUEST_LOG_LIMIT) this.requestLog.shift()
    }
  }

  async #route(req: IncomingMessage, method: string, url: URL): Promise<unknown> {
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs))
    const match = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    if (!match) {
      req.resume()
      throw new AzureHttpError(
        401,
        'Unauthorized',
        'AKV10000: Request is missing a Bearer or PoP token.',
        undefined,
        { 'www-authenticate': CHALLENGE }
      )
    }
    const limited = [...this.#limited].find(([token]) => tokensMatch(match[1], token))?.[1]
    if (!limited && !tokensMatch(match[1], this.#token)) {
      req.resume()
      throw new AzureHttpError(401, 'Unauthorized', 'AKV10022: Invalid token.', undefined, {
        'www-authenticate': CHALLENGE,
      })
    }
    const action = dataAction(method, url.pathname)
    if (limited && !limited.has(action)) {
      req.resume()
      throw new AzureHttpError(
        403,
        'Forbidden',
        `Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/keys/${action}'`,
        'ForbiddenByRbac'
      )
    }
    const fault = this.#faults.take(url.pathname)
    if (fault && !fault.afterHandling) {
      req.resume()
      throw fault.error
    }
    const answer = await this.#dispatch(req, method, url)
    if (fault) throw fault.error
    return answer
  }

  async #dispatch(req: IncomingMessage, method: string, url: URL): Promise<unknown> {
    if (!url.searchParams.get('api-version')) {
      req.resume()
      throw badParameter('The api-version query parameter is missing.')
    }
    const parts = url.pathname.split('/').slice(1)
    if (parts[0] !== 'keys')
      throw new AzureHttpError(404, 'NotFound', 'The requested resource was not found.')
    const raw =
      method === 'POST' || method === 'PATCH' || method === 'PUT'
        ? await readBody(req, this.#maxBodyBytes)
        : Buffer.alloc(0)
    if (raw.length === 0) req.resume()
    const ctx: handlers.HandlerContext = {
      store: this.#store,
      base: `https://${req.headers.host ?? 'localhost'}`,
      body: parseJsonObject(raw),
      query: url.searchParams,
      path: url.pathname,
    }
    const [, name, second, third] = parts.map((p) => decodeURIComponent(p))
    if (name === undefined || name === '')
      return this.#allow(method, ['GET'], () => handlers.listKeys(ctx))
    if (!KEY_NAME.test(name)) throw badParameter('The key name is invalid.')
    if (parts.length > 4)
      throw new AzureHttpError(404, 'NotFound', 'The requested resource was not found.')
    if (third !== undefined) {
      const op = third.toLowerCase()
      if (op === 'wrapkey')
        return this.#allow(method, ['POST'], () => handlers.wrapKey(ctx, name, second))
      if (op === 'unwrapkey')
        return this.#allow(method, ['POST'], () => handlers.unwrapKey(ctx, name, second))
      throw new AzureHttpError(404, 'NotFound', 'The requested resource was not found.')
    }
    if (second === 'create')
      return this.#allow(method, ['POST'], () => handlers.createKey(ctx, name))
    if (second === 'rotate')
      return this.#allow(method, ['POST'], () => handlers.rotateKey(ctx, name))
    if (second === 'versions')
      return this.#allow(method, ['GET'], () => handlers.listVersions(ctx, name))
    if (method === 'PATCH') return handlers.updateKey(ctx, name, second ?? '', this.#now())
    return this.#allow(method, ['GET'], () => handlers.getKey(ctx, name, second ?? ''))
  }

  #allow<T>(method: string, allowed: string[], run: () => T): T {
    if (!allowed.includes(method)) {
      throw new AzureHttpError(405, 'MethodNotAllowed', `The ${method} method is not allowed here.`)
    }
    return run()
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = JSON.stringify(body)
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'x-ms-keyvault-service-version': '1.9.0.0',
      ...headers,
    })
    res.end(text)
  }
}

/** The data action a request needs (as Key Vault's RBAC checks it). */
function dataAction(method: string, path: string): DataAction {
  const last = path.split('/').at(-1)?.toLowerCase()
  if (last === 'wrapkey') return 'wrap/action'
  if (last === 'unwrapkey') return 'unwrap/action'
  if (method === 'POST' && (last === 'create' || last === 'rotate')) return 'create/action'
  if (method === 'PATCH') return 'update/action'
  return 'read'
}
