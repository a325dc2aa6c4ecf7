/*
|--------------------------------------------------------------------------
| Fault injection (TEST-ONLY)
|--------------------------------------------------------------------------
|
| Lets a test make the server answer the next requests with a canned
| failure (429 with Retry-After, 500, 503…), no answer at all (a timeout),
| a response cut mid-body, a reset connection or per-item batch errors, to
| prove a client's retry policy over real HTTP. Queued faults answer one
| request each; a policy decides per request (e.g. seeded random). Nothing
| outside tests calls it; `kms:serve` never exposes it.
|
*/
import type { FaultKind, FaultPolicy, InjectedFault } from '#kms/transit_server/types'

const DEFAULT_MESSAGES: Record<number, string> = {
  429: 'request path: rate limit quota exceeded',
  500: 'internal error',
  502: 'bad gateway',
  503: 'Vault is sealed',
  504: 'context deadline exceeded',
}

/** Vault's text for a batch item it could not decrypt. */
const DEFAULT_ITEM_ERROR = 'cipher: message authentication failed'

/** A fault to apply to one request. */
export interface FaultResponse {
  kind: FaultKind
  status: number
  headers: Record<string, string>
  errors: string[]
  /** `item_errors`: indexes of the failed items (null = every other one). */
  items: number[] | null
}

const KINDS: FaultKind[] = ['status', 'hang', 'truncate', 'reset', 'item_errors']

function validate(fault: InjectedFault) {
  const kind = fault.kind ?? 'status'
  if (!KINDS.includes(kind)) throw new RangeError(`unknown fault kind ${String(kind)}`)
  if (kind !== 'status') return
  const status = fault.status
  if (!Number.isInteger(status) || status! < 400 || status! > 599) {
    throw new RangeError('an injected fault needs a 4xx or 5xx status')
  }
}

function toResponse(fault: InjectedFault): FaultResponse {
  const kind = fault.kind ?? 'status'
  const status = fault.status ?? 500
  const headers: Record<string, string> = {}
  if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
  const message =
    fault.message ??
    (kind === 'item_errors'
      ? DEFAULT_ITEM_ERROR
      : (DEFAULT_MESSAGES[status] ?? `error (status ${status})`))
  return { kind, status, headers, errors: [message], items: fault.items ?? null }
}

/**
 * FIFO of injected faults, plus an optional per-request policy (test-only).
 */
export class FaultQueue {
  #queue: InjectedFault[] = []
  #policy: FaultPolicy | null = null

  /** Appends faults; each answers one matching request. */
  add(faults: InjectedFault[]) {
    for (const fault of faults) {
      validate(fault)
      this.#queue.push({ ...fault })
    }
  }

  /** Consulted for every request the queue does not answer; null removes it. */
  setPolicy(policy: FaultPolicy | null) {
    this.#policy = policy
  }

  /** Drops every pending fault and the policy. */
  clear() {
    this.#queue = []
    this.#policy = null
  }

  /** Faults not yet used. */
  get pending(): number {
    return this.#queue.length
  }

  /**
   * Takes the first fault matching `path` (else asks the policy), if any.
   */
  take(path: string): FaultResponse | null {
    const index = this.#queue.findIndex(
      (fault) => !fault.pathIncludes || path.includes(fault.pathIncludes)
    )
    if (index !== -1) {
      const [fault] = this.#queue.splice(index, 1)
      return toResponse(fault)
    }
    const chosen = this.#policy?.(path)
    if (!chosen) return null
    validate(chosen)
    return toResponse(chosen)
  }
}

/**
 * A batch answer with the items at `items` (every other one when null)
 * replaced by a per-item error, as Vault reports an item it could not use.
 */
export function withItemErrors<R extends { body?: unknown }>(
  reply: R,
  items: number[] | null,
  message: string
): R {
  const body = reply.body as { data?: { batch_results?: unknown[] } } | undefined
  const results = body?.data?.batch_results
  if (!Array.isArray(results)) return reply
  const failed = new Set(items ?? results.map((_, i) => i).filter((i) => i % 2 === 1))
  const batchResults = results.map((item, i) => (failed.has(i) ? { error: message } : item))
  return { ...reply, body: { ...body, data: { ...body!.data, batch_results: batchResults } } }
}
