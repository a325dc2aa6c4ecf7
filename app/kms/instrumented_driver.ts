/*
|--------------------------------------------------------------------------
| KMS request instrumentation
|--------------------------------------------------------------------------
|
| Every driver the KmsManager creates is wrapped in a Proxy that times each
| contract call and counts its failures by stable error code (and the
| per-item failures of rewrap). The collectors are prom-client metrics
| registered in no registry: the metrics service registers them in its own.
| Only names, operations, durations and codes are recorded: never a key,
| a DEK or an argument.
|
| It is also where a KMS failure's detail is logged, once: the errors the
| drivers throw carry a fixed message per code (what clients, run rows and
| CLI lines see) and the KMS's own text as their cause (it can name the
| KMS's storage host and user), which is written here at WARN, with the
| driver, operation, KEK name and code.
|
*/
import logger from '@adonisjs/core/services/logger'
import { Counter, Histogram } from 'prom-client'
import { errorCode } from '#app/errors'
import type { KmsDriver, RewrapResult } from '#kms/contract'
import { kmsDetailOf } from '#kms/error_codes'

/** Contract calls that are timed. */
const OPERATIONS = new Set<string>([
  'createKey',
  'readKey',
  'listKeys',
  'rotateKey',
  'configureKey',
  'trimKey',
  'generateDataKey',
  'wrap',
  'unwrap',
  'rewrap',
])

/** KMS call latency per driver and operation (seconds). */
export const kmsRequestDuration = new Histogram({
  name: 'rewrap_kms_request_duration_seconds',
  help: 'Latency of KMS driver calls (a batch call counts once), by driver and operation',
  labelNames: ['driver', 'op', 'outcome'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [],
})

/** KMS failures by driver, operation and stable error code. */
export const kmsErrors = new Counter({
  name: 'rewrap_kms_errors_total',
  help: 'KMS call failures (op) and rejected rewrap items (op="rewrap_item"), by error code',
  labelNames: ['driver', 'op', 'code'] as const,
  registers: [],
})

/** The KEK a contract call is about (its first argument). */
function kekOf(args: unknown[]): string | undefined {
  return typeof args[0] === 'string' ? args[0] : undefined
}

/** The operator's view of a failed call: the KMS's detail, else the error's own message. */
function detailOf(error: unknown): string {
  return kmsDetailOf(error) ?? String((error as { message?: unknown } | null)?.message ?? error)
}

/**
 * Wraps a driver so that its contract calls are timed and their failures
 * counted. The proxy keeps the driver's prototype (instanceof still holds)
 * and forwards every other member (`close`, …) bound to the
 * driver itself.
 */
export function instrumentDriver(driver: KmsDriver, driverName: string): KmsDriver {
  return new Proxy(driver, {
    get(target, property) {
      // The driver itself as receiver: its #private members are not on the proxy.
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (typeof property !== 'string' || !OPERATIONS.has(property)) return value.bind(target)
      return async (...args: unknown[]) => {
        const end = kmsRequestDuration.startTimer({ driver: driverName, op: property })
        try {
          const result = await value.apply(target, args)
          end({ outcome: 'ok' })
          if (property === 'rewrap' && Array.isArray(result)) {
            logRewrapFailures(driverName, kekOf(args), result as RewrapResult[])
          }
          return result
        } catch (error) {
          end({ outcome: 'error' })
          const code = errorCode(error)
          kmsErrors.inc({ driver: driverName, op: property, code })
          logger.warn(
            { kms: driverName, op: property, kek: kekOf(args), code, detail: detailOf(error) },
            'KMS call failed'
          )
          throw error
        }
      }
    },
  })
}

/**
 * Counts a rewrap call's rejected items and logs them in one line: how many
 * per code, and the KMS's text of the first one.
 */
function logRewrapFailures(driverName: string, kek: string | undefined, items: RewrapResult[]) {
  const failed = items.filter((item) => !item.ok)
  if (failed.length === 0) return
  const codes = new Map<string, number>()
  for (const item of failed) {
    kmsErrors.inc({ driver: driverName, op: 'rewrap_item', code: item.code })
    codes.set(item.code, (codes.get(item.code) ?? 0) + 1)
  }
  logger.warn(
    {
      kms: driverName,
      op: 'rewrap',
      kek,
      failed: failed.length,
      codes: Object.fromEntries(codes),
      detail: failed[0].message,
    },
    'KMS rejected rewrap items'
  )
}
