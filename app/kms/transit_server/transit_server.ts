/*
|--------------------------------------------------------------------------
| Vault Transit-compatible HTTP server (`node ace kms:serve`)
|--------------------------------------------------------------------------
|
| Plain node:http. Serves `/v1/<mount>/…` (keys, rotate, config, trim,
| encrypt, decrypt, rewrap, datakey, random), `/v1/sys/health`,
| `/v1/sys/seal-status` and `/v1/auth/token/lookup-self` with Vault's
| status codes and `{"errors":[…]}` bodies, backed by a keyring store and
| the pure engine of app/crypto/keyring.ts. One handler per endpoint under
| ./handlers, like Vault's builtin/logical/transit.
|
| Authentication: X-Vault-Token, else `Authorization: Bearer` (token.ts);
| failed checks throttled per remote address (auth_throttle.ts). A
| `batch_input` holds at most MAX_BATCH_ITEMS items and is processed in
| chunks with turns of the event loop between them (batch.ts).
|
| Never logged, never put in an error: the token, bodies (plaintext,
| DEKs, ciphertext), key material. The request log holds method, path and
| status only.
|
*/
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import type { RandomBytes } from '#crypto/aead'
import { AuthThrottle } from '#kms/transit_server/auth_throttle'
import { health } from '#kms/transit_server/handlers/health'
import { lookupSelf } from '#kms/transit_server/handlers/lookup_self'
import { sealStatus } from '#kms/transit_server/handlers/seal_status'
import { FaultQueue, withItemErrors } from '#kms/transit_server/faults'
import { TransitHttpError, toHttpError } from '#kms/transit_server/http_error'
import { DEFAULT_MAX_BODY_BYTES, parseJsonObject, readBody } from '#kms/transit_server/request_body'
import { requestId, vaultEnvelope } from '#kms/transit_server/response'
import { matchRoute } from '#kms/transit_server/router'
import { assertTokenStrength, presentedToken, tokensMatch } from '#kms/transit_server/token'
import type {
  HandlerResult,
  FaultPolicy,
  InjectedFault,
  RequestLogEntry,
  TransitEngine,
  TransitLogger,
  TransitServerOptions,
} from '#kms/transit_server/types'

/** Entries kept in the request log (oldest dropped first). */
const REQUEST_LOG_LIMIT = 10_000

interface Reply {
  status: number
  headers: Record<string, string>
  body?: unknown
}

/**
 * The transit server. `listen()` to start, `close()` to stop.
 */
export class TransitServer {
  /**
   * Every answered request (method, path, status), oldest first; bounded.
   * Bodies and headers are never recorded.
   */
  readonly requestLog: RequestLogEntry[] = []

  #server: Server
  #engine: TransitEngine
  #token: string
  #mount: string
  #maxBodyBytes: number
  #random: RandomBytes
  #logger?: TransitLogger
  #faults = new FaultQueue()
  /** Requests held unanswered by a `hang` fault (ended when the server closes). */
  #hung = new Set<ServerResponse>()
  #throttle: AuthThrottle
  #latencyMs: number

  constructor(options: TransitServerOptions) {
    assertTokenStrength(options.token)
    this.#token = options.token
    this.#throttle = new AuthThrottle(options.authThrottle)
    this.#mount = (options.mount ?? 'transit').replace(/^\/+|\/+$/g, '')
    if (!this.#mount) throw new Error('the transit mount path must not be empty')
    this.#random = options.random ?? randomBytes
    const now = options.now ?? (() => Math.floor(Date.now() / 1000))
    this.#engine = {
      store: options.store,
      now,
      random: this.#random,
      startedAt: now(),
      tokenAccessor: requestId(this.#random),
    }
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
    this.#logger = options.logger
    this.#latencyMs = Math.max(0, options.latencyMs ?? 0)
    this.#server = createServer((req, res) => void this.#handle(req, res))
    this.#server.requestTimeout = options.requestTimeoutMs ?? 90_000
    this.#server.headersTimeout = Math.min(60_000, this.#server.requestTimeout)
  }

  /** The mount path served (`transit`). */
  get mount(): string {
    return this.#mount
  }

  /**
   * Starts listening (port 0 = a free port); resolves with the bound address.
   */
  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error)
      this.#server.once('error', onError)
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError)
        resolve(this.#server.address() as AddressInfo)
      })
    })
  }

  /** `http://host:port` once listening. */
  get url(): string {
    const address = this.#server.address()
    if (!address || typeof address === 'string') throw new Error('the server is not listening')
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}`
  }

  /**
   * Stops accepting connections and waits for in-flight requests (forcing
   * connections closed after `graceMs`).
   */
  close(graceMs = 2_000): Promise<void> {
    for (const res of this.#hung) res.destroy()
    if (!this.#server.listening) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const force = setTimeout(() => this.#server.closeAllConnections(), graceMs)
      force.unref()
      this.#server.close((error) => {
        clearTimeout(force)
        if (error) reject(error)
        else resolve()
      })
      this.#server.closeIdleConnections()
    })
  }

  /**
   * TEST-ONLY: answers the next matching requests with these failures
   * (in order, one request each) before touching the engine or checking
   * the token. `kms:serve` never calls this.
   */
  injectFaults(faults: InjectedFault[]) {
    this.#faults.add(faults)
  }

  /** TEST-ONLY: drops faults not yet used. */
  clearFaults() {
    this.#faults.clear()
  }

  /** TEST-ONLY: injected faults not yet used. */
  get pendingFaults(): number {
    return this.#faults.pending
  }

  /** TEST-ONLY: every request is first offered to `policy` (null removes it). */
  setFaultPolicy(policy: FaultPolicy | null) {
    this.#faults.setPolicy(policy)
  }

  async #handle(req: IncomingMessage, res: ServerResponse) {
    const method = (req.method ?? 'GET').toUpperCase()
    const path = (req.url ?? '/').split('?')[0]
    const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '')
    const fault = this.#faults.take(path)
    if (fault?.kind === 'reset' || fault?.kind === 'hang') {
      // Logged with status 0: no answer was sent.
      this.#record({ method, path, status: 0 })
      if (fault.kind === 'reset') return void req.socket.resetAndDestroy()
      this.#hung.add(res)
      res.on('close', () => this.#hung.delete(res))
      return
    }
    let reply: Reply
    try {
      reply =
        fault?.kind === 'status'
          ? { status: fault.status, headers: fault.headers, body: { errors: fault.errors } }
          : await this.#reply(req, method, path, query)
    } catch (error) {
      reply = this.#errorReply(error)
    }
    if (fault?.kind === 'item_errors') reply = withItemErrors(reply, fault.items, fault.errors[0])
    // A cloud KMS's round trip, as `--latency-ms` asks (benchmarks): every answer waits.
    if (this.#latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#latencyMs))
    this.#record({ method, path, status: reply.status })
    if (fault?.kind === 'truncate') return this.#writeTruncated(res, reply)
    this.#write(res, reply)
  }

  async #reply(
    req: IncomingMessage,
    method: string,
    path: string,
    query: URLSearchParams
  ): Promise<Reply> {
    if (path === '/v1/sys/health') {
      if (method !== 'GET' && method !== 'HEAD') throw this.#methodNotAllowed(['GET', 'HEAD'])
      return this.#fromResult(await health({ engine: this.#engine, params: {}, body: {}, query }))
    }
    if (path === '/v1/sys/seal-status') {
      if (method !== 'GET') throw this.#methodNotAllowed(['GET'])
      return this.#fromResult(
        await sealStatus({ engine: this.#engine, params: {}, body: {}, query })
      )
    }
    if (!path.startsWith('/v1/')) throw new TransitHttpError(404, 'not found', [])

    this.#authenticate(req)

    if (path === '/v1/auth/token/lookup-self') {
      if (!['GET', 'POST', 'PUT'].includes(method)) {
        throw this.#methodNotAllowed(['GET', 'POST', 'PUT'])
      }
      await readBody(req, this.#maxBodyBytes)
      return this.#fromResult(
        await lookupSelf({ engine: this.#engine, params: {}, body: {}, query })
      )
    }

    const prefix = `/v1/${this.#mount}/`
    if (!path.startsWith(prefix)) throw new TransitHttpError(404, 'unsupported path')
    const match = matchRoute(method, path.slice(prefix.length))
    if (!match) throw new TransitHttpError(404, 'unsupported path')
    if (!match.handler) throw this.#methodNotAllowed(match.allowed)

    const body = parseJsonObject(await readBody(req, this.#maxBodyBytes))
    const result = await match.handler({ engine: this.#engine, params: match.params, body, query })
    return this.#fromResult(result)
  }

  /**
   * X-Vault-Token or `Authorization: Bearer`; failures counted per remote
   * address, a locked-out address answered 429 before any comparison.
   */
  #authenticate(req: IncomingMessage) {
    const address = req.socket.remoteAddress ?? 'unknown'
    this.#throttle.assertAllowed(address)
    if (tokensMatch(presentedToken(req.headers), this.#token)) return
    this.#throttle.recordFailure(address)
    throw new TransitHttpError(403, 'permission denied')
  }

  #fromResult(result: HandlerResult): Reply {
    if (result.status === 204 || result.data === undefined) {
      return { status: result.status, headers: {} }
    }
    const body = result.raw
      ? result.data
      : vaultEnvelope(requestId(this.#random), result.data, result.warnings)
    return { status: result.status, headers: {}, body }
  }

  #methodNotAllowed(allowed: string[]) {
    return new TransitHttpError(405, 'unsupported operation', undefined, {
      allow: allowed.join(', '),
    })
  }

  #errorReply(error: unknown): Reply {
    const converted = toHttpError(error)
    if (converted instanceof TransitHttpError) {
      return {
        status: converted.status,
        headers: converted.headers,
        body: { errors: converted.errors },
      }
    }
    // Unexpected (store down, bug): log the kind only, never a message that
    // could quote a query or a value.
    const err = converted as { name?: string; code?: string }
    this.#logger?.error(
      { err: { name: err?.name ?? 'Error', code: err?.code } },
      'transit server: internal error'
    )
    return { status: 500, headers: {}, body: { errors: ['internal error'] } }
  }

  #record(entry: RequestLogEntry) {
    this.requestLog.push(entry)
    if (this.requestLog.length > REQUEST_LOG_LIMIT) this.requestLog.shift()
    this.#logger?.debug(entry, 'transit request')
  }

  /** The answer's headers and half its body, then the connection is destroyed. */
  #writeTruncated(res: ServerResponse, reply: Reply) {
    const payload = Buffer.from(JSON.stringify(reply.body ?? {}))
    res.writeHead(reply.status, {
      'content-type': 'application/json',
      'content-length': String(payload.length),
    })
    res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => res.destroy())
  }

  #write(res: ServerResponse, reply: Reply) {
    const headers: Record<string, string> = { 'cache-control': 'no-store', ...reply.headers }
    if (reply.body === undefined) {
      res.writeHead(reply.status, headers)
      res.end()
      return
    }
    const payload = JSON.stringify(reply.body)
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(payload))
    res.writeHead(reply.status, headers)
    res.end(payload)
  }
}
