/*
|--------------------------------------------------------------------------
| Transit server types
|--------------------------------------------------------------------------
*/
import type { RandomBytes } from '#crypto/aead'
import type { Keyring } from '#crypto/keyring'
import type { AuthThrottleOptions } from '#kms/transit_server/auth_throttle'

/**
 * Where the server keeps keyrings. LocalKeyringStore (Postgres, sealed
 * under KMS_ROOT_KEY) satisfies it.
 */
export interface TransitKeyStore {
  /** Reads a keyring, null when unknown. */
  load(name: string): Promise<Keyring | null>
  /** Inserts a new keyring; throws KeyringError with status 409 when the name is taken. */
  insert(ring: Keyring): Promise<void>
  /** Changes a keyring atomically; null when it does not exist. */
  update(name: string, change: (ring: Keyring) => Keyring): Promise<Keyring | null>
  /** Deletes a keyring; false when it did not exist. */
  delete(name: string): Promise<boolean>
  /** Names of all keyrings (LIST keys). */
  names(): Promise<string[]>
}

/** The minimal logger the server writes to (pino / AdonisJS logger compatible). */
export interface TransitLogger {
  debug(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** What the handlers work with. */
export interface TransitEngine {
  store: TransitKeyStore
  /** Unix seconds. */
  now: () => number
  random: RandomBytes
  /** When the server was made, unix seconds (the token's creation_time in lookup-self). */
  startedAt: number
  /** A random handle for the server's token, unrelated to it (lookup-self's `accessor`). */
  tokenAccessor: string
}

/** Options of the transit server. */
export interface TransitServerOptions {
  store: TransitKeyStore
  /** Value clients must send as X-Vault-Token (or `Authorization: Bearer`); ≥ 24 characters. */
  token: string
  /** Failed-authentication throttle per remote address. */
  authThrottle?: AuthThrottleOptions
  /** Mount path, `transit` by default. */
  mount?: string
  /** Unix seconds; injected for tests. */
  now?: () => number
  /** Random bytes (keys, nonces, request ids); injected for tests. */
  random?: RandomBytes
  /** Largest accepted request body, bytes (Vault's default: 32 MiB). */
  maxBodyBytes?: number
  /** Per-request timeout, ms (Vault's default: 90 s). */
  requestTimeoutMs?: number
  /** Delay added before every answer, ms (`kms:serve --latency-ms`: benchmarks); 0 by default. */
  latencyMs?: number
  logger?: TransitLogger
}

/** One answered request: never a body, never a header. */
export interface RequestLogEntry {
  method: string
  /** URL path without the query string. */
  path: string
  status: number
}

/**
 * How an injected fault answers (test-only):
 * - `status`: a canned error response (`status`, `retryAfter`, `message`);
 * - `hang`: never answers (the client's timeout fires; the socket is closed
 *   when the client gives up or the server closes);
 * - `truncate`: the real answer's headers and half of its body, then the
 *   connection is destroyed (a response cut mid-body);
 * - `reset`: the connection is reset (RST) before any answer;
 * - `item_errors`: the real answer, with the batch items at `items` (or every
 *   other item) replaced by a per-item error, as Vault reports a bad item.
 */
export type FaultKind = 'status' | 'hang' | 'truncate' | 'reset' | 'item_errors'

/**
 * A canned failure answered instead of the next request (test-only).
 */
export interface InjectedFault {
  /** `status` by default. */
  kind?: FaultKind
  /** HTTP status of a `status` fault (4xx or 5xx). */
  status?: number
  /** Retry-After header, seconds. */
  retryAfter?: number
  /** Error text in `{"errors":[…]}` (or of each failed item); a Vault-like default. */
  message?: string
  /** Only requests whose path contains this are affected (default: any request). */
  pathIncludes?: string
  /** `item_errors`: indexes of the failed items (default: every other one). */
  items?: number[]
}

/**
 * Decides, per request path, whether to inject a fault (test-only), e.g. a
 * seeded random policy failing one call in five.
 */
export type FaultPolicy = (path: string) => InjectedFault | null

/** Input of one endpoint handler. */
export interface HandlerContext {
  engine: TransitEngine
  /** Route parameters (decoded), e.g. `name`. */
  params: Record<string, string>
  /** Parsed JSON body (`{}` when empty). */
  body: Record<string, unknown>
  /** Query string parameters. */
  query: URLSearchParams
}

/** Output of one endpoint handler: the `data` of the Vault response. */
export interface HandlerResult {
  status: number
  /** `data` of the Vault envelope; absent for 204. */
  data?: Record<string, unknown>
  warnings?: string[]
  /** Send `data` as the whole body (no Vault envelope), e.g. sys/health. */
  raw?: boolean
}

/** One endpoint. */
export type TransitHandler = (context: HandlerContext) => Promise<HandlerResult>
