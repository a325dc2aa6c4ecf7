/*
|--------------------------------------------------------------------------
| One phase of load: autocannon, bounded in time and requests
|--------------------------------------------------------------------------
*/
import autocannon from 'autocannon'
import { requestMix, type MixKind, type MixTarget } from './mix.js'

/** What a phase measured. */
export interface PhaseStats {
  label: string
  seconds: number
  /** Responses received, and their rate. */
  responses: number
  requestsPerSecond: number
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number }
  /** Answers with a status outside 2xx. */
  non2xx: number
  /** Connection errors (autocannon's `errors`, timeouts included) and timeouts. */
  socketErrors: number
  timeouts: number
  /** Responses per status code. */
  statusCodes: Record<string, number>
  /** Requests built per kind (reads, writes, updates). */
  built: Record<MixKind, number>
  /** non2xx + socket errors. */
  failed: number
}

/** Where the load goes and how. */
export interface LoadTarget extends Omit<MixTarget, 'seed'> {
  /** http://127.0.0.1:<port> */
  url: string
  token: string
  rate: number
  connections: number
}

/**
 * Starts a phase of at most `seconds` and `rate × seconds` requests;
 * `stop()` ends it early. `done` resolves with its figures. With `amount`
 * it ends after exactly that many requests instead (tests: a count that
 * does not depend on the machine's speed).
 */
export function startPhase(
  target: LoadTarget,
  label: string,
  seconds: number,
  seed: number,
  amount?: number
) {
  const url = new URL(target.url)
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
    throw new Error('the load harness only sends to the loopback interface')
  }
  const mix = requestMix({ ...target, seed })
  const statusCodes: Record<string, number> = {}
  let instance: autocannon.Instance | undefined
  const done = new Promise<PhaseStats>((resolve, reject) => {
    instance = autocannon(
      {
        url: target.url,
        connections: target.connections,
        overallRate: target.rate,
        // Its correction assumes one request per 1/rate ms (rounded up to 1 ms) per connection and
        // back-fills samples down to it, which halves p50: record each answer as measured.
        ignoreCoordinatedOmission: true,
        ...(amount === undefined
          ? {
              duration: seconds,
              maxOverallRequests: Math.max(target.connections, Math.ceil(target.rate * seconds)),
            }
          : { amount }),
        timeout: 10,
        headers: {
          'authorization': `Bearer ${target.token}`,
          'content-type': 'application/json',
        },
        requests: [mix.request],
      },
      (error, result) => {
        if (error) return reject(error)
        const non2xx = result.non2xx
        resolve({
          label,
          seconds: result.duration,
          responses: result.requests.total,
          requestsPerSecond: Math.round((result.requests.total / result.duration) * 10) / 10,
          latencyMs: {
            p50: result.latency.p50,
            p90: result.latency.p90,
            p99: result.latency.p99,
            max: result.latency.max,
            mean: Math.round(result.latency.mean * 10) / 10,
          },
          non2xx,
          socketErrors: result.errors,
          timeouts: result.timeouts,
          statusCodes,
          built: { ...mix.built },
          failed: non2xx + result.errors,
        })
      }
    )
    instance.on('response', (_client: unknown, statusCode: number) => {
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1
    })
  })
  return { stop: () => instance?.stop(), done }
}
