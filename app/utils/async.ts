/*
|--------------------------------------------------------------------------
| Promise helpers
|--------------------------------------------------------------------------
|
| Generic and I/O-free: a deadline for one promise, and a map with bounded
| concurrency. Used by the status report and the readiness checks.
|
*/
import { E_TIMEOUT } from '#app/errors'

/** `work`, or an E_TIMEOUT error after `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what = 'KMS call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new E_TIMEOUT([what, ms])), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Maps with at most `limit` calls in flight; results in input order. */
export async function mapLimited<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
