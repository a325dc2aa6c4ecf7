/*
|--------------------------------------------------------------------------
| AWS KMS-compatible HTTP server (`node ace kms:serve --api aws-kms`)
|--------------------------------------------------------------------------
|
| The KMS wire protocol (AWS JSON 1.1): `POST /` with
| `X-Amz-Target: TrentService.<Operation>` and
| `Content-Type: application/x-amz-json-1.1`, every request signed with
| SigV4 and verified against the one access key the server is given
| (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Answers and errors in KMS's
| shapes (aws_error.ts); keys in a KeyModel (key_model.ts) whose material
| is the local engine's. So `@aws-sdk/client-kms` — and Rewrap's aws-kms
| driver — run against it unchanged through `AWS_ENDPOINT_URL_KMS`.
|
| Never logged, never put in an error: the secret key, bodies (plaintext,
| DEKs, ciphertext blobs). The request log holds the operation and status.
|
*/
import { closeServer, listenOn, serverUrl } from '#kms/stand_in_server'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { AwsKmsError } from '#kms/aws_server/aws_error'
import { AwsFaultQueue, type AwsInjectedFault } from '#kms/aws_server/faults'
import { KeyModel } from '#kms/aws_server/key_model'
import { operations } from '#kms/aws_server/operations'
import { verifySigv4, type Sigv4Credentials } from '#kms/aws_server/sigv4'
import { readBody } from '#kms/transit_server/request_body'

/** KMS's request size limit is far below this; bodies here are small JSON. */
const MAX_BODY_BYTES = 1024 * 1024
const REQUEST_LOG_LIMIT = 10_000
const TARGET_PREFIX = 'TrentService.'
/** Operations that change keys or aliases. */
const MUTATING = new Set([
  'CreateKey',
  'EnableKey',
  'DisableKey',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
  'TagResource',
  'UntagResource',
  'CreateAlias',
  'UpdateAlias',
  'DeleteAlias',
])

/** Options of the server. */
export interface AwsKmsServerOptions {
  credentials: Sigv4Credentials
  /** Region of ARNs (a request's credential scope must name it). */
  region?: string
  /** Epoch milliseconds; injected for tests (signature skew, dates). */
  now?: () => number
  /** Called after every operation that changed keys or aliases (persistence). */
  onChange?: (model: KeyModel) => void
  /** Operator log (never bodies). */
  logger?: { info: (msg: string) => void; warn: (msg: string) => void }
}

/** One answered request. */
export interface AwsRequestLogEntry {
  operation: string
  status: number
  errorType?: string
}

/**
 * The AWS KMS stand-in. `listen()` to start, `close()` to stop.
 */
export class AwsKmsServer {
  /** Every answered request (operation, status, error type), oldest first; bounded. */
  readonly requestLog: AwsRequestLogEntry[] = []
  readonly model: KeyModel

  #server: Server
  #credentials: Sigv4Credentials
  #region: string
  #now: () => number
  #faults = new AwsFaultQueue()
  #latencyMs = 0
  #inFlight = 0
  #peakInFlight = 0
  #logger?: AwsKmsServerOptions['logger']
  #onChange?: AwsKmsServerOptions['onChange']

  constructor(options: AwsKmsServerOptions) {
    if (!options.credentials.accessKeyId || !options.credentials.secretAccessKey) {
      throw new Error('the AWS KMS stand-in needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY')
    }
    this.#credentials = options.credentials
    this.#region = options.region ?? 'us-east-1'
    this.#now = options.now ?? Date.now
    this.#logger = options.logger
    this.#onChange = options.onChange
    this.model = new KeyModel(this.#region, undefined, () => this.#now() / 1000)
    this.#server = createServer((req, res) => void this.#handle(req, res))
    this.#server.keepAliveTimeout = 5_000
  }

  /** Region of the server's ARNs. */
  get region() {
    return this.#region
  }

  /** Base URL once listening. */
  get url(): string {
    return serverUrl(this.#server, 'http')
  }

  /** Starts listening. */
  listen(port: number, host = '127.0.0.1'): Promise<void> {
    return listenOn(this.#server, port, host)
  }

  /** Stops listening and drops open connections. */
  close(): Promise<void> {
    return closeServer(this.#server)
  }

  /** TEST-ONLY: answers the next matching requests with these errors. */
  injectFaults(faults: AwsInjectedFault[]) {
    this.#faults.add(faults)
  }

  /** TEST-ONLY: drops pending faults and latency. */
  clearFaults() {
    this.#faults.clear()
    this.#latencyMs = 0
  }

  /** Faults not yet used. */
  get pendingFaults() {
    return this.#faults.pending
  }

  /** Most authenticated requests in progress at once since the last reset (tests: bounded concurrency). */
  get peakInFlight() {
    return this.#peakInFlight
  }

  /** Resets `peakInFlight`. */
  resetPeakInFlight() {
    this.#peakInFlight = this.#inFlight
  }

  /** Delay added to every request before it is answered (tests; `kms:serve --latency-ms`). */
  setLatency(ms: number) {
    this.#latencyMs = Math.max(0, ms)
  }

  async #handle(req: IncomingMessage, res: ServerResponse) {
    let operation = '?'
    try {
      const body = await readBody(req, MAX_BODY_BYTES).catch(() => {
        throw new AwsKmsError('SerializationException', 'Request body too large or incomplete', 413)
      })
      if (req.method !== 'POST') throw new AwsKmsError('UnknownOperationException', undefined, 404)
      const target = String(req.headers['x-amz-target'] ?? '')
      operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '?'
      const auth = verifySigv4(
        { method: req.method, url: req.url ?? '/', headers: req.headers, body },
        this.#credentials,
        'kms',
        this.#now()
      )
      if (!auth.ok) {
        // Not authenticated: AWS answers 400 for these types (403 for a missing token).
        const status = auth.type === 'MissingAuthenticationTokenException' ? 403 : 400
        throw new AwsKmsError(auth.type, auth.message, status)
      }
      if (auth.region !== this.#region) {
        throw new AwsKmsError(
          'InvalidSignatureException',
          'Credential should be scoped to a valid region.'
        )
      }
      this.#inFlight++
      this.#peakInFlight = Math.max(this.#peakInFlight, this.#inFlight)
      try {
        if (this.#latencyMs > 0) await new Promise((r) => setTimeout(r, this.#latencyMs))
      } finally {
        this.#inFlight--
      }
      const fault = this.#faults.take(operation)
      if (fault === 'drop') {
        this.requestLog.push({ operation, status: 0, errorType: 'dropped' })
        req.socket.destroy()
        return
      }
      if (fault) throw fault
      const run = Object.hasOwn(operations, operation) ? operations[operation] : undefined
      if (!run || !target.startsWith(TARGET_PREFIX)) {
        throw new AwsKmsError('UnknownOperationException', undefined)
      }
      const contentType = String(req.headers['content-type'] ?? '')
      if (!contentType.startsWith('application/x-amz-json-1.1')) {
        throw new AwsKmsError('UnknownOperationException', undefined)
      }
      let input: unknown
      try {
        input = body.length ? JSON.parse(body.toString('utf8')) : {}
      } catch {
        throw new AwsKmsError(
          'SerializationException',
          'Start of structure or map found where not expected.'
        )
      }
      if (!input || typeof input !== 'object' || Array.isArray(input)) {
        throw new AwsKmsError(
          'SerializationException',
          'Start of structure or map found where not expected.'
        )
      }
      const output = run(this.model, input as Record<string, unknown>)
      if (MUTATING.has(operation)) this.#onChange?.(this.model)
      this.#reply(res, operation, 200, output)
    } catch (error) {
      const failure =
        error instanceof AwsKmsError
          ? error
          : new AwsKmsError('KMSInternalException', 'Internal failure', 500)
      if (!(error instanceof AwsKmsError)) {
        this.#logger?.warn(`aws-kms stand-in: ${operation} failed: ${(error as Error)?.name}`)
      }
      this.#reply(res, operation, failure.status, failure.body(), failure.type)
    }
  }

  #reply(
    res: ServerResponse,
    operation: string,
    status: number,
    body: unknown,
    errorType?: string
  ) {
    this.requestLog.push(errorType ? { operation, status, errorType } : { operation, status })
    if (this.requestLog.length > REQUEST_LOG_LIMIT) this.requestLog.shift()
    const payload = JSON.stringify(body)
    const headers: Record<string, string | number> = {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(payload),
      'x-amzn-requestid': randomUUID(),
    }
    if (errorType) headers['x-amzn-errortype'] = errorType
    res.writeHead(status, headers)
    res.end(payload)
  }
}
