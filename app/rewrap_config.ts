/*
|--------------------------------------------------------------------------
| config/rewrap.ts helper (the @adonisjs/hash defineConfig pattern)
|--------------------------------------------------------------------------
|
| `defineConfig` validates the settings once, when the config file loads
| (so a bad value stops the boot with E_CONFIG_INVALID naming the key), and
| resolves every managed KEK into a `KekPolicy` with all its periods. The
| rest of the app reads policies through `KekPolicies` (injected), never by
| parsing `lifecycle.keks` again.
|
*/
import cron from 'node-cron'
import { E_CONFIG_INVALID } from '#app/errors'
import { KEK_NAME_PATTERN } from '#validators/entry'

/** The periods of a KEK's life, ms. */
export interface KekPeriods {
  /** The scheduler rotates once the latest version is this old. */
  cryptoperiodMs: number
  /** `kek:retire` only once the latest version is this old. */
  soakMs: number
  /** `kek:trim` only this long after `kek:retire`. */
  retentionMs: number
}

/** A KEK the app manages through its whole life (rotate, retire, trim). */
export interface ManagedKekConfig extends Partial<KekPeriods> {
  /** KEK name (as in the KMS and in vault_entries.kek_name). */
  name: string
}

/** A KEK with every period resolved; `managed` when config/rewrap.ts lists it. */
export interface KekPolicy extends KekPeriods {
  name: string
  managed: boolean
}

/** Settings of config/rewrap.ts as written (see that file for each field). */
export interface RewrapConfigInput {
  dekCache: {
    maxEntries: number
    ttlMs: number
    invalidation: {
      heartbeatMs: number
      heartbeatTimeoutMs: number
      reconnectMinMs: number
      reconnectMaxMs: number
    }
  }
  health: { cacheMs: number }
  /** The operator console: its page polls /console/live every `pollMs`. */
  console: { pollMs: number }
  /** Distributed runs: chunk lease and target chunk size (config/rewrap.ts `distributed`). */
  distributed: { leaseMs: number; chunkRows: number }
  rotation: {
    batchSize: number
    sleepMs: number
    maxRate: number
    pacing: 'latency-budget' | 'nice-ratio'
    niceRatio: number
    latencyBudget: {
      ratio: number
      minDuty: number
      increase: number
      decrease: number
      windowMs: number
      minSamples: number
      pollMs: number
      baselineMs: number
      rebaselineMs: number
      recorder: { flushMs: number; maxSamples: number; keepMs: number }
    }
    pacedBatchSize: number
    foreground: { intervalMs: number; windowMs: number }
    cpuNice: number | null
    niceLocalBackends: boolean
    kmsOutageMs: number
    databaseOutageMs: number
    maxPasses: number
    estimateRowsPerSecond: number
  }
  lifecycle: {
    defaults: KekPeriods
    /** Managed KEKs: a bare name takes the defaults. */
    keks: Array<string | ManagedKekConfig>
    schedule: string
    reencrypt: { batchSize: number; sleepMs: number; niceRatio: number; maxPasses: number }
  }
}

/** config/rewrap.ts after validation: `lifecycle.keks` resolved. */
export interface RewrapConfig extends Omit<RewrapConfigInput, 'lifecycle'> {
  lifecycle: Omit<RewrapConfigInput['lifecycle'], 'keks'> & { keks: readonly KekPolicy[] }
}

const FILE = 'config/rewrap.ts'

/** Throws E_CONFIG_INVALID for `key` unless `ok`. */
function check(ok: boolean, key: string, what: string, value: unknown) {
  if (!ok) throw new E_CONFIG_INVALID([FILE, `${key} ${what} (got ${JSON.stringify(value)})`])
}

function positiveInt(value: unknown, key: string) {
  check(
    Number.isSafeInteger(value) && (value as number) > 0,
    key,
    'must be a positive integer',
    value
  )
}

function nonNegative(value: unknown, key: string) {
  check(
    typeof value === 'number' && Number.isFinite(value) && value >= 0,
    key,
    'must be a finite number ≥ 0',
    value
  )
}

function positivePeriod(value: unknown, key: string) {
  check(
    typeof value === 'number' && Number.isFinite(value) && value > 0,
    key,
    'must be a positive number of ms',
    value
  )
}

/** Validates a complete set of periods (`lifecycle.defaults`). */
function checkPeriods(periods: Partial<KekPeriods>, key: string) {
  if (periods.cryptoperiodMs !== undefined) {
    positivePeriod(periods.cryptoperiodMs, `${key}.cryptoperiodMs`)
  }
  if (periods.soakMs !== undefined) nonNegative(periods.soakMs, `${key}.soakMs`)
  if (periods.retentionMs !== undefined) nonNegative(periods.retentionMs, `${key}.retentionMs`)
}

/** Validates `rotation.latencyBudget`. */
function checkLatencyBudget(budget: RewrapConfigInput['rotation']['latencyBudget']) {
  const key = 'rotation.latencyBudget'
  check(
    typeof budget?.ratio === 'number' && budget.ratio > 1 && budget.ratio <= 100,
    `${key}.ratio`,
    'must be a number > 1 and ≤ 100',
    budget?.ratio
  )
  check(
    typeof budget.minDuty === 'number' && budget.minDuty > 0 && budget.minDuty <= 1,
    `${key}.minDuty`,
    'must be in (0, 1]',
    budget.minDuty
  )
  check(
    typeof budget.increase === 'number' && budget.increase > 0 && budget.increase <= 1,
    `${key}.increase`,
    'must be in (0, 1]',
    budget.increase
  )
  check(
    typeof budget.decrease === 'number' && budget.decrease > 0 && budget.decrease < 1,
    `${key}.decrease`,
    'must be in (0, 1)',
    budget.decrease
  )
  positiveInt(budget.minSamples, `${key}.minSamples`)
  for (const name of ['windowMs', 'pollMs', 'baselineMs', 'rebaselineMs'] as const) {
    positivePeriod(budget[name], `${key}.${name}`)
  }
  positivePeriod(budget.recorder?.flushMs, `${key}.recorder.flushMs`)
  positiveInt(budget.recorder.maxSamples, `${key}.recorder.maxSamples`)
  positivePeriod(budget.recorder.keepMs, `${key}.recorder.keepMs`)
}

/**
 * The managed KEKs as policies, in order, each named once: a bare name
 * takes `defaults`; an entry's own periods win over the defaults and over a
 * bare name (REWRAP_MANAGED_KEKS) of the same KEK; two entries of one KEK
 * with periods of their own are ambiguous and refused.
 */
export function resolveManagedKeks(
  keks: ReadonlyArray<string | ManagedKekConfig>,
  defaults: KekPeriods
): KekPolicy[] {
  const byName = new Map<string, { policy: KekPolicy; explicit: boolean }>()
  keks.forEach((entry, index) => {
    const key = `lifecycle.keks[${index}]`
    const kek: ManagedKekConfig = typeof entry === 'string' ? { name: entry } : entry
    check(
      typeof kek?.name === 'string' && KEK_NAME_PATTERN.test(kek.name),
      `${key}.name`,
      'must be a KEK name (letters, digits and _ . -, 1 to 128 characters)',
      kek?.name
    )
    checkPeriods(kek, key)
    const explicit = typeof entry !== 'string'
    const seen = byName.get(kek.name)
    if (seen?.explicit && explicit) {
      check(false, `${key}.name`, 'names a KEK already listed with its own periods', kek.name)
    }
    if (seen && !explicit) return
    byName.set(kek.name, {
      explicit,
      policy: {
        name: kek.name,
        managed: true,
        cryptoperiodMs: kek.cryptoperiodMs ?? defaults.cryptoperiodMs,
        soakMs: kek.soakMs ?? defaults.soakMs,
        retentionMs: kek.retentionMs ?? defaults.retentionMs,
      },
    })
  })
  return [...byName.values()].map(({ policy }) => Object.freeze(policy))
}

/**
 * Defines config/rewrap.ts: validates every setting and resolves the
 * managed KEKs. Throws E_CONFIG_INVALID naming the first bad key.
 */
export function defineConfig(config: RewrapConfigInput): RewrapConfig {
  const { dekCache, health, rotation, lifecycle } = config
  positiveInt(config.console.pollMs, 'console.pollMs')
  positiveInt(dekCache.maxEntries, 'dekCache.maxEntries')
  nonNegative(dekCache.ttlMs, 'dekCache.ttlMs')
  for (const key of ['heartbeatMs', 'heartbeatTimeoutMs', 'reconnectMinMs'] as const) {
    positivePeriod(dekCache.invalidation[key], `dekCache.invalidation.${key}`)
  }
  check(
    dekCache.invalidation.reconnectMaxMs >= dekCache.invalidation.reconnectMinMs,
    'dekCache.invalidation.reconnectMaxMs',
    'must be ≥ reconnectMinMs',
    dekCache.invalidation.reconnectMaxMs
  )
  nonNegative(health.cacheMs, 'health.cacheMs')

  positivePeriod(config.distributed.leaseMs, 'distributed.leaseMs')
  positiveInt(config.distributed.chunkRows, 'distributed.chunkRows')
  positiveInt(rotation.batchSize, 'rotation.batchSize')
  positiveInt(rotation.pacedBatchSize, 'rotation.pacedBatchSize')
  nonNegative(rotation.sleepMs, 'rotation.sleepMs')
  nonNegative(rotation.maxRate, 'rotation.maxRate')
  nonNegative(rotation.niceRatio, 'rotation.niceRatio')
  check(
    rotation.pacing === 'latency-budget' || rotation.pacing === 'nice-ratio',
    'rotation.pacing',
    "must be 'latency-budget' or 'nice-ratio'",
    rotation.pacing
  )
  checkLatencyBudget(rotation.latencyBudget)
  positivePeriod(rotation.foreground.intervalMs, 'rotation.foreground.intervalMs')
  positivePeriod(rotation.foreground.windowMs, 'rotation.foreground.windowMs')
  if (rotation.cpuNice !== null) {
    check(
      Number.isInteger(rotation.cpuNice) && rotation.cpuNice >= 0 && rotation.cpuNice <= 19,
      'rotation.cpuNice',
      'must be null or an integer from 0 to 19',
      rotation.cpuNice
    )
  }
  nonNegative(rotation.kmsOutageMs, 'rotation.kmsOutageMs')
  nonNegative(rotation.databaseOutageMs, 'rotation.databaseOutageMs')
  check(
    Number.isInteger(rotation.maxPasses) && rotation.maxPasses >= 0,
    'rotation.maxPasses',
    'must be an integer ≥ 0',
    rotation.maxPasses
  )
  positivePeriod(rotation.estimateRowsPerSecond, 'rotation.estimateRowsPerSecond')

  for (const key of ['cryptoperiodMs', 'soakMs', 'retentionMs'] as const) {
    check(
      typeof lifecycle.defaults[key] === 'number',
      `lifecycle.defaults.${key}`,
      'must be set',
      lifecycle.defaults[key]
    )
  }
  checkPeriods(lifecycle.defaults, 'lifecycle.defaults')
  check(
    typeof lifecycle.schedule === 'string' && cron.validate(lifecycle.schedule),
    'lifecycle.schedule',
    'must be a cron expression',
    lifecycle.schedule
  )
  positiveInt(lifecycle.reencrypt.batchSize, 'lifecycle.reencrypt.batchSize')
  nonNegative(lifecycle.reencrypt.sleepMs, 'lifecycle.reencrypt.sleepMs')
  nonNegative(lifecycle.reencrypt.niceRatio, 'lifecycle.reencrypt.niceRatio')
  check(
    Number.isInteger(lifecycle.reencrypt.maxPasses) && lifecycle.reencrypt.maxPasses >= 0,
    'lifecycle.reencrypt.maxPasses',
    'must be an integer ≥ 0',
    lifecycle.reencrypt.maxPasses
  )

  return {
    ...config,
    lifecycle: {
      ...lifecycle,
      defaults: Object.freeze({ ...lifecycle.defaults }),
      keks: Object.freeze(resolveManagedKeks(lifecycle.keks, lifecycle.defaults)),
    },
  }
}
