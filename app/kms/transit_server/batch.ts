/*
|--------------------------------------------------------------------------
| Batch input and status (encrypt, decrypt, rewrap, as Vault does them)
|--------------------------------------------------------------------------
*/
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { badRequest } from '#kms/transit_server/http_error'
import { intField, stringField } from '#kms/transit_server/params'

/**
 * Items accepted in one `batch_input` (Vault has no such cap; its clients,
 * Rewrap's vault driver included, send 1,000 at a time). More answer 400.
 */
export const MAX_BATCH_ITEMS = 10_000

/** Items processed between two turns of the event loop. */
export const BATCH_CHUNK_ITEMS = 250

/** One input item (a single request is a batch of one). */
export interface BatchItem {
  plaintext?: string
  ciphertext?: string
  context?: string
  nonce?: string
  associatedData?: string
  keyVersion?: number
  reference: string
}

/** Parsed input: the items, and whether the caller sent `batch_input`. */
export interface BatchInput {
  items: BatchItem[]
  isBatch: boolean
}

/**
 * Reads `batch_input`, or the top-level fields as one item.
 */
export function readBatchInput(body: Record<string, unknown>): BatchInput {
  const raw = body.batch_input
  if (raw === undefined || raw === null) return { items: [readItem(body, '')], isBatch: false }
  if (!Array.isArray(raw)) throw badRequest('failed to parse batch input: expected an array')
  if (raw.length === 0) throw badRequest('missing batch input to process')
  if (raw.length > MAX_BATCH_ITEMS) {
    throw badRequest(
      `batch_input has ${raw.length} items; this server accepts at most ${MAX_BATCH_ITEMS} per request`
    )
  }
  const items = raw.map((entry, index) => {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
      throw badRequest(`failed to parse batch input: [${index}] expected a map`)
    }
    return readItem(entry as Record<string, unknown>, `[${index}].`)
  })
  return { items, isBatch: true }
}

/**
 * `items.map(process)`, yielding to the event loop every
 * {@link BATCH_CHUNK_ITEMS} items so one large batch does not hold the
 * server (other requests, health checks) for its whole duration.
 */
export async function mapBatch<In, Out>(items: In[], process: (item: In) => Out): Promise<Out[]> {
  const out: Out[] = []
  for (let start = 0; start < items.length; start += BATCH_CHUNK_ITEMS) {
    if (start > 0) await yieldToEventLoop()
    const end = Math.min(items.length, start + BATCH_CHUNK_ITEMS)
    for (let index = start; index < end; index++) out.push(process(items[index]))
  }
  return out
}

function readItem(source: Record<string, unknown>, prefix: string): BatchItem {
  try {
    return {
      plaintext: stringField(source, 'plaintext'),
      ciphertext: stringField(source, 'ciphertext'),
      context: stringField(source, 'context'),
      nonce: stringField(source, 'nonce'),
      associatedData: stringField(source, 'associated_data'),
      keyVersion: intField(source, 'key_version'),
      reference: stringField(source, 'reference') ?? '',
    }
  } catch (error) {
    if (!prefix) throw error
    throw badRequest(`failed to parse batch input: ${prefix}${(error as Error).message}`)
  }
}

/**
 * The status of an encrypt/decrypt batch (Vault ≥ 1.10): 400 when an item
 * failed, or `partial_failure_response_code` when some succeeded.
 */
export function batchStatus(
  body: Record<string, unknown>,
  results: Array<{ error?: string }>
): { status: number; warnings: string[] } {
  const failed = results.some((r) => r.error)
  if (!failed) return { status: 200, warnings: [] }
  const succeeded = results.some((r) => !r.error)
  const override = intField(body, 'partial_failure_response_code')
  if (override !== undefined && succeeded) {
    if (override < 1 || override > 599) {
      return {
        status: 400,
        warnings: [
          'invalid HTTP response code override from partial_failure_response_code, reverting to 400',
        ],
      }
    }
    return { status: override, warnings: [] }
  }
  return { status: 400, warnings: [] }
}

/**
 * The result of a request without `batch_input` (a batch of one): its
 * item's error is the request's 400, as Vault answers a single call.
 */
export function singleResult<Result extends { error?: string }>(results: Result[]): Result {
  const [result] = results
  if (result.error) throw badRequest(result.error)
  return result
}
