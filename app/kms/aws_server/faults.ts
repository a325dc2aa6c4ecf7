/*
|--------------------------------------------------------------------------
| Fault injection for the AWS KMS stand-in (TEST-ONLY)
|--------------------------------------------------------------------------
|
| Lets a test make the server answer the next matching requests with a
| canned AWS error (ThrottlingException, KMSInternalException 500, 503…)
| or a dropped connection
| before anything reaches the key model, to prove a client's pacing and
| retries over real HTTP. `kms:serve` never exposes it (only the added
| latency, AwsKmsServer.setLatency, as `--latency-ms`).
|
*/
import { AwsKmsError } from '#kms/aws_server/aws_error'

/** One canned failure. */
export interface AwsInjectedFault {
  /** AWS error type, e.g. ThrottlingException. */
  type: string
  /** HTTP status (400 for throttling, as AWS answers). */
  status?: number
  message?: string
  /** Only this operation (X-Amz-Target suffix, e.g. `ReEncrypt`); any when absent. */
  operation?: string
  /** Drop the connection instead of answering (a network failure). */
  drop?: boolean
}

const DEFAULT_MESSAGES: Record<string, string> = {
  ThrottlingException: 'Rate exceeded',
  KMSInternalException: 'Internal failure',
  ServiceUnavailableException: 'Service Unavailable',
  AccessDeniedException: 'User is not authorized to perform this operation',
}

/**
 * FIFO of injected faults.
 */
export class AwsFaultQueue {
  #queue: AwsInjectedFault[] = []

  /** Appends faults; each answers one matching request. */
  add(faults: AwsInjectedFault[]) {
    for (const fault of faults) this.#queue.push({ ...fault })
  }

  /** Drops every pending fault. */
  clear() {
    this.#queue = []
  }

  /** Faults not yet used. */
  get pending(): number {
    return this.#queue.length
  }

  /** Takes the first fault for `operation`: the error to answer, or 'drop'. */
  take(operation: string): AwsKmsError | 'drop' | null {
    const index = this.#queue.findIndex((f) => !f.operation || f.operation === operation)
    if (index === -1) return null
    const [fault] = this.#queue.splice(index, 1)
    if (fault.drop) return 'drop'
    const status = fault.status ?? (fault.type === 'KMSInternalException' ? 500 : 400)
    return new AwsKmsError(fault.type, fault.message ?? DEFAULT_MESSAGES[fault.type], status)
  }
}
