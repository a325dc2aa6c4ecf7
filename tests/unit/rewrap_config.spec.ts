import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import { defineConfig, resolveManagedKeks, type RewrapConfigInput } from '#app/rewrap_config'
import rewrapConfig from '#config/rewrap'
import { defineConfig as defineKmsConfig, validateKmsConfig } from '#kms/define_config'
import { KmsManager } from '#kms/kms_manager'
import { KekPolicies } from '#services/kek_policies'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const DEFAULTS = { cryptoperiodMs: 90 * DAY, soakMs: 24 * HOUR, retentionMs: 30 * DAY }

/** A valid config/rewrap.ts input; `change` edits a fresh copy. */
function input(change: (config: RewrapConfigInput) => void = () => {}): RewrapConfigInput {
  const config: RewrapConfigInput = {
    dekCache: {
      maxEntries: 10,
      ttlMs: 1000,
      invalidation: {
        heartbeatMs: 5000,
        heartbeatTimeoutMs: 2000,
        reconnectMinMs: 100,
        reconnectMaxMs: 5000,
      },
    },
    health: { cacheMs: 5000 },
    console: { pollMs: 1000 },
    distributed: { leaseMs: 30_000, chunkRows: 20_000 },
    rotation: {
      batchSize: 1000,
      sleepMs: 0,
      maxRate: 0,
      pacing: 'latency-budget',
      niceRatio: 4,
      latencyBudget: {
        ratio: 1.2,
        minDuty: 0.05,
        increase: 0.1,
        decrease: 0.5,
        windowMs: 3000,
        minSamples: 20,
        pollMs: 500,
        baselineMs: 3000,
        rebaselineMs: 300_000,
        recorder: { flushMs: 500, maxSamples: 2000, keepMs: 120_000 },
      },
      pacedBatchSize: 100,
      foreground: { intervalMs: 500, windowMs: 1000 },
      cpuNice: 19,
      niceLocalBackends: true,
      kmsOutageMs: 60_000,
      databaseOutageMs: 60_000,
      maxPasses: 3,
      estimateRowsPerSecond: 20_000,
    },
    lifecycle: {
      defaults: { ...DEFAULTS },
      keks: ['orders'],
      schedule: '0 3 * * *',
      reencrypt: { batchSize: 500, sleepMs: 0, niceRatio: 4, maxPasses: 3 },
    },
  }
  change(config)
  return config
}

test.group('config/rewrap.ts defineConfig', () => {
  test('the shipped config resolves: managed KEKs are policies with every period', ({ assert }) => {
    assert.deepEqual(rewrapConfig.lifecycle.defaults, DEFAULTS)
    for (const policy of rewrapConfig.lifecycle.keks) {
      assert.isTrue(policy.managed)
      assert.isAbove(policy.cryptoperiodMs, 0)
    }
  })

  test('a bare name takes the defaults; an entry with periods wins; one policy per name', ({
    assert,
  }) => {
    const config = defineConfig(
      input((c) => {
        c.lifecycle.keks = ['a', { name: 'b', cryptoperiodMs: DAY }, 'b', 'a']
      })
    )
    assert.deepEqual(config.lifecycle.keks, [
      { name: 'a', managed: true, ...DEFAULTS },
      { name: 'b', managed: true, ...DEFAULTS, cryptoperiodMs: DAY },
    ])
  })

  const bad: Array<[string, (c: RewrapConfigInput) => void, string]> = [
    [
      'a zero cryptoperiod of a KEK',
      (c) => (c.lifecycle.keks = ['x', { name: 'orders', cryptoperiodMs: 0 }]),
      'lifecycle.keks[1].cryptoperiodMs must be a positive number of ms (got 0)',
    ],
    [
      'a negative cryptoperiod',
      (c) => (c.lifecycle.keks = [{ name: 'orders', cryptoperiodMs: -DAY }]),
      'lifecycle.keks[0].cryptoperiodMs must be a positive number of ms (got -86400000)',
    ],
    [
      'a cryptoperiod in days as text',
      (c) => (c.lifecycle.keks = [{ name: 'orders', cryptoperiodMs: '90d' as any }]),
      'lifecycle.keks[0].cryptoperiodMs must be a positive number of ms (got "90d")',
    ],
    [
      'a default cryptoperiod of 0',
      (c) => (c.lifecycle.defaults.cryptoperiodMs = 0),
      'lifecycle.defaults.cryptoperiodMs must be a positive number of ms (got 0)',
    ],
    [
      'a missing default',
      (c) => delete (c.lifecycle.defaults as any).retentionMs,
      'lifecycle.defaults.retentionMs must be set',
    ],
    [
      'a negative soak period',
      (c) => (c.lifecycle.keks = [{ name: 'orders', soakMs: -1 }]),
      'lifecycle.keks[0].soakMs must be a finite number ≥ 0 (got -1)',
    ],
    [
      'a KEK name that is not one',
      (c) => (c.lifecycle.keks = ['orders', 'no spaces']),
      'lifecycle.keks[1].name must be a KEK name',
    ],
    [
      'one KEK listed twice with periods of its own',
      (c) =>
        (c.lifecycle.keks = [
          { name: 'orders', cryptoperiodMs: DAY },
          { name: 'orders', cryptoperiodMs: 2 * DAY },
        ]),
      'lifecycle.keks[1].name names a KEK already listed with its own periods (got "orders")',
    ],
    [
      'a schedule that is not cron',
      (c) => (c.lifecycle.schedule = 'every night'),
      'lifecycle.schedule must be a cron expression (got "every night")',
    ],
    [
      'a batch size of 0',
      (c) => (c.rotation.batchSize = 0),
      'rotation.batchSize must be a positive integer (got 0)',
    ],
    [
      'a nice level out of range',
      (c) => (c.rotation.cpuNice = 20),
      'rotation.cpuNice must be null or an integer from 0 to 19 (got 20)',
    ],
  ]
  for (const [what, change, message] of bad) {
    test(`refused, naming the key: ${what}`, ({ assert }) => {
      try {
        defineConfig(input(change))
        assert.fail('defineConfig accepted it')
      } catch (error: any) {
        assert.equal(error.code, 'E_CONFIG_INVALID')
        assert.include(error.message, `Invalid config/rewrap.ts: ${message}`)
      }
    })
  }
})

test.group('KekPolicies', () => {
  test('the container binds one instance built from config/rewrap.ts', async ({ assert }) => {
    const policies = await app.container.make(KekPolicies)
    assert.strictEqual(await app.container.make(KekPolicies), policies)
    assert.deepEqual(policies.managed(), [...rewrapConfig.lifecycle.keks])
    assert.deepEqual(policies.policy('not-managed-kek'), {
      name: 'not-managed-kek',
      managed: false,
      ...rewrapConfig.lifecycle.defaults,
    })
  })

  test('policy(kek): the managed entry, else the defaults; prototype names are plain names', ({
    assert,
  }) => {
    const policies = new KekPolicies(
      resolveManagedKeks(['a', { name: 'b', soakMs: HOUR }], DEFAULTS),
      DEFAULTS
    )
    assert.deepEqual(policies.managedNames(), ['a', 'b'])
    assert.deepEqual(policies.policy('b'), { name: 'b', managed: true, ...DEFAULTS, soakMs: HOUR })
    for (const name of ['c', 'constructor', '__proto__', 'toString']) {
      assert.deepEqual(policies.policy(name), { name, managed: false, ...DEFAULTS })
    }
  })
})

test.group('config/kms.ts defineConfig', () => {
  const drivers = { local: () => ({}) as any, vault: () => ({}) as any }

  test('an unknown default fails, naming it and the drivers', ({ assert }) => {
    assert.throws(
      () => validateKmsConfig({ default: 'valut', drivers }),
      'Invalid config/kms.ts: default names no configured driver (got "valut"; drivers: local, vault)'
    )
    assert.throws(
      () => defineKmsConfig({ default: 'nope', drivers: {} } as any),
      'Invalid config/kms.ts: default names no configured driver (got "nope"; drivers: )'
    )
    // A prototype member is not a driver.
    assert.throws(
      () => new KmsManager({ default: 'constructor', drivers }),
      'Invalid config/kms.ts: default names no configured driver (got "constructor"'
    )
  })

  test('a keks entry naming no driver fails, naming the KEK', ({ assert }) => {
    assert.throws(
      () => validateKmsConfig({ default: 'local', drivers, keks: { orders: 'aws' } }),
      'Invalid config/kms.ts: keks.orders names no configured driver (got "aws"; drivers: local, vault)'
    )
    assert.throws(
      () => validateKmsConfig({ default: 'local', drivers, keks: { 'no spaces': 'local' } }),
      'Invalid config/kms.ts: keks: "no spaces" is not a KEK name'
    )
    assert.doesNotThrow(() =>
      validateKmsConfig({ default: 'local', drivers, keks: { constructor: 'vault' } })
    )
  })
})
