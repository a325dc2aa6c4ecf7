/*
|--------------------------------------------------------------------------
| Key Vault stand-in: fault injection (TEST-ONLY)
|--------------------------------------------------------------------------
|
| A FIFO of canned failures, each answering one matching request before it
| reaches the store, in Key Vault's error shape: 429 Throttled with
| Retry-After, 5xx, 403 Forbidden (RBAC)… Also a latency added to every
| request (benchmarks, timeouts). `kms:serve` exposes only the latency
| (`--latency-ms`).
|
*/
import { AzureHttpError } from '#kms/azure_server/wire'

/** One injected failure. */
export interface AzureFault {
  status: number
  /** Retry-After seconds. */
  retryAfter?: number
  /** Only requests whose path contains this (e.g. `/unwrapkey`). */
  pathIncludes?: string
  code?: string
  message?: string
  innerCode?: string
  /** Answer the failure only after the request was carried out (a lost response). */
  afterHandling?: boolean
}

const DEFAULTS: Record<number, { code: string; message: string; innerCode?: string }> = {
  403: {
    code: 'Forbidden',
    message: 'Caller is not authorized to perform action on resource.',
    innerCode: 'ForbiddenByRbac',
  },
  429: {
    code: 'Throttled',
    message:
      'Request was not processed because too many requests were received. Reason: A maximum of 4000 transactions in 10 seconds are allowed.',
  },
  500: { code: 'InternalServerError', message: 'An unexpected error occurred.' },
  503: { code: 'ServiceUnavailable', message: 'The service is temporarily unavailable.' },
}

/** FIFO of faults. */
export class AzureFaultQueue {
  #queue: AzureFault[] = []

  add(faults: AzureFault[]) {
    for (const fault of faults) {
      if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) {
        throw new RangeError('an injected fault needs a 4xx or 5xx status')
      }
      this.#queue.push({ ...fault })
    }
  }

  clear() {
    this.#queue = []
  }

  get pending() {
    return this.#queue.length
  }

  /** The first fault matching `path` as an error to answer, if any. */
  take(path: string): { error: AzureHttpError; afterHandling: boolean } | null {
    const index = this.#queue.findIndex((f) => !f.pathIncludes || path.includes(f.pathIncludes))
    if (index === -1) return null
    const [fault] = this.#queue.splice(index, 1)
    const known = DEFAULTS[fault.status] ?? { code: 'Error', message: `status ${fault.status}` }
    const headers: Record<string, string> = {}
    if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
    const error = new AzureHttpError(
      fault.status,
      fault.code ?? known.code,
      fault.message ?? known.message,
      fault.innerCode ?? known.innerCode,
      headers
    )
    return { error, afterHandling: fault.afterHandling === true }
  }
}
