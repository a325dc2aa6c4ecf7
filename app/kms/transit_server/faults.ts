/*
|--------------------------------------------------------------------------
| Fault injection (TEST-ONLY)
|--------------------------------------------------------------------------
|
| Lets a test make the server answer the next requests with a canned
| failure (429 with Retry-After, 500, 503…) before anything reaches the
| engine, to prove a client's retry policy over real HTTP. Nothing outside
| tests calls it; `kms:serve` never exposes it.
|
*/
import type { InjectedFault } from '#kms/transit_server/types'

const DEFAULT_MESSAGES: Record<number, string> = {
  429: 'request path: rate limit quota exceeded',
  500: 'internal error',
  502: 'bad gateway',
  503: 'Vault is sealed',
  504: 'context deadline exceeded',
}

/** A canned response. */
export interface FaultResponse {
  status: number
  headers: Record<string, string>
  errors: string[]
}

/**
 * FIFO of injected faults (test-only).
 */
export class FaultQueue {
  #queue: InjectedFault[] = []

  /** Appends faults; each answers one matching request. */
  add(faults: InjectedFault[]) {
    for (const fault of faults) {
      if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) {
        throw new RangeError('an injected fault needs a 4xx or 5xx status')
      }
      this.#queue.push({ ...fault })
    }
  }

  /** Drops every pending fault. */
  clear() {
    this.#queue = []
  }

  /** Faults not yet used. */
  get pending(): number {
    return this.#queue.length
  }

  /**
   * Takes the first fault matching `path`, if any.
   */
  take(path: string): FaultResponse | null {
    const index = this.#queue.findIndex(
      (fault) => !fault.pathIncludes || path.includes(fault.pathIncludes)
    )
    if (index === -1) return null
    const [fault] = this.#queue.splice(index, 1)
    const headers: Record<string, string> = {}
    if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
    const message =
      fault.message ?? DEFAULT_MESSAGES[fault.status] ?? `error (status ${fault.status})`
    return { status: fault.status, headers, errors: [message] }
  }
}
