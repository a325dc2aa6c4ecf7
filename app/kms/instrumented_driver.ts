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
*/
import { Counter, Histogram } from 'prom-client'
import type { KmsDriver, RewrapResult } from '#kms/contract'

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

/** The stable code of a thrown error (E_* codes only; anything else is E_UNKNOWN). */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' && code.startsWith('E_') ? code : 'E_UNKNOWN'
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
            for (const item of result as RewrapResult[]) {
              if (!item.ok)
                kmsErrors.inc({ driver: driverName, op: 'rewrap_item', code: item.code })
            }
          }
          return result
        } catch (error) {
          end({ outcome: 'error' })
          kmsErrors.inc({ driver: driverName, op: property, code: errorCode(error) })
          throw error
        }
      }
    },
  })
}
