/*
|--------------------------------------------------------------------------
| Health service
|--------------------------------------------------------------------------
|
| GET /health/ready, with AdonisJS health checks (@adonisjs/core/health):
| - database: one `SELECT 1`;
| - per KMS driver in use: reachable (a read of a key that need not exist);
| - per KEK (the managed KEKs of config/rewrap.ts `lifecycle.keks`, else
|   every KEK named by rows of vault_entries): a round trip proving that
|   wrap, rewrap and unwrap are permitted — a random test DEK is wrapped,
|   rewrapped, unwrapped and compared, then wiped. It is never stored,
|   logged or returned.
|
| - `governance.dualControl` says whether master-key acts need approvals;
|   while DUAL_CONTROL=off it carries a warning (the service stays ready:
|   the setting is not a fault of this instance).
|
| Check results carry `safeMessage(error)`: a stable code and its fixed
| message (never a KMS's own text: a KMS error body can name hosts and
| users; no error objects, no stacks); the report leaves out the process's
| debug info.
|
| The probe runs at most once per `rewrap.health.cacheMs` (5 s) per
| process, and concurrent callers share the run in flight: a readiness
| poller or many callers cannot turn into KMS load. Anonymous callers get
| the overall status only (health_controller.ts).
|
*/
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { inject } from '@adonisjs/core'
import { BaseCheck, HealthChecks, Result } from '@adonisjs/core/health'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { safeMessage } from '#app/errors'
import { withTimeout } from '#app/utils/async'
import type { RewrapConfig } from '#config/rewrap'
import { kmsError, type KmsErrorCode } from '#kms/error_codes'
import { EntryCountCache } from '#services/entry_counts'
import { KekPolicies } from '#services/kek_policies'
import { SingleFlightCache } from '#services/single_flight_cache'
import {
  DUAL_CONTROL_OFF_WARNING,
  DualControl,
  type DualControlSetting,
} from '#services/dual_control'

/** A check that takes longer fails (a readiness probe must answer quickly). */
export const CHECK_TIMEOUT_MS = 5_000

type HealthCheckResult = Awaited<ReturnType<BaseCheck['run']>>

/** The last readiness report of this process, shared by all requests. */
export class ReadinessCache extends SingleFlightCache<ReadinessReport> {}

/** The readiness report as /health/ready returns it. */
export interface ReadinessReport {
  isHealthy: boolean
  status: 'ok' | 'warning' | 'error'
  finishedAt: string
  /** `off` (with a warning) while DUAL_CONTROL=off lets master-key acts run without approvals. */
  governance: { dualControl: DualControlSetting; warning?: string }
  checks: Array<{
    name: string
    status: 'ok' | 'warning' | 'error'
    message: string
    finishedAt: string
    meta?: Record<string, unknown>
  }>
}

/**
 * The database answers a query.
 */
export class DatabaseCheck extends BaseCheck {
  /** Check name in the report. */
  name = 'database'

  /** Runs `SELECT 1`. */
  async run(): Promise<HealthCheckResult> {
    const started = Date.now()
    try {
      await withTimeout(db.rawQuery('SELECT 1'), CHECK_TIMEOUT_MS, 'database query')
      return Result.ok('Database reachable').setMetaData({ ms: Date.now() - started })
    } catch (error) {
      return Result.failed(`Database unreachable (${safeMessage(error)})`)
    }
  }
}

/**
 * A KMS driver answers (reads a probe key; "not found" is an answer).
 */
export class KmsReachableCheck extends BaseCheck {
  /** Check name in the report. */
  name: string

  constructor(
    private driverName: string,
    private driver: () => Promise<KmsDriver>
  ) {
    super()
    this.name = `kms:${driverName}`
  }

  /** Reads `rewrap-health-probe`. */
  async run(): Promise<HealthCheckResult> {
    const started = Date.now()
    try {
      const driver = await this.driver()
      await withTimeout(driver.readKey('rewrap-health-probe'), CHECK_TIMEOUT_MS, 'KMS read')
      return Result.ok(`KMS driver "${this.driverName}" reachable`).setMetaData({
        ms: Date.now() - started,
      })
    } catch (error) {
      return Result.failed(`KMS driver "${this.driverName}" unreachable (${safeMessage(error)})`)
    }
  }
}

/**
 * wrap → rewrap → unwrap of a random test DEK under one KEK.
 */
export class KekRoundTripCheck extends BaseCheck {
  /** Check name in the report. */
  name: string

  constructor(
    private kekName: string,
    private driver: () => Promise<KmsDriver>
  ) {
    super()
    this.name = `kek:${kekName}`
  }

  /** Runs the round trip and compares. */
  async run(): Promise<HealthCheckResult> {
    const started = Date.now()
    const dek = randomBytes(32)
    let back: Buffer | undefined
    try {
      const driver = await this.driver()
      back = await withTimeout(this.#roundTrip(driver, dek), CHECK_TIMEOUT_MS, 'KMS round trip')
      if (back.length !== dek.length || !timingSafeEqual(back, dek)) {
        return Result.failed(`KEK "${this.kekName}": unwrapped test DEK does not match`)
      }
      return Result.ok(`KEK "${this.kekName}": wrap, rewrap and unwrap permitted`).setMetaData({
        ms: Date.now() - started,
      })
    } catch (error) {
      return Result.failed(`KEK "${this.kekName}": ${safeMessage(error)}`)
    } finally {
      dek.fill(0)
      back?.fill(0)
    }
  }

  async #roundTrip(driver: KmsDriver, dek: Buffer): Promise<Buffer> {
    const [wrapped] = await driver.wrap(this.kekName, [dek])
    const [rewrapped] = await driver.rewrap(this.kekName, [wrapped])
    if (!rewrapped.ok) {
      throw kmsError(rewrapped.code as KmsErrorCode, rewrapped.message, this.kekName)
    }
    const [unwrapped] = await driver.unwrap(this.kekName, [rewrapped.wrapped])
    return unwrapped
  }
}

/**
 * Builds and runs the readiness checks.
 */
@inject()
export class HealthService {
  constructor(
    private kms: KmsManager,
    private entryCounts: EntryCountCache,
    private cache: ReadinessCache,
    private policies: KekPolicies,
    private dualControl: DualControl
  ) {}

  /**
   * The readiness report: the last probe when younger than
   * `rewrap.health.cacheMs`, else the probe in flight, else a new one.
   */
  ready(): Promise<ReadinessReport> {
    const cacheMs = app.config.get<RewrapConfig['health']['cacheMs']>('rewrap.health.cacheMs', 5000)
    return this.cache
      .get(cacheMs, () => this.probe())
      .then((report) => ({ ...report, governance: this.#governance() }))
  }

  #governance(): ReadinessReport['governance'] {
    return this.dualControl.enabled
      ? { dualControl: 'on' }
      : { dualControl: 'off', warning: DUAL_CONTROL_OFF_WARNING }
  }

  /**
   * The last report of this process however old, a new probe starting in
   * the background when it is older than `rewrap.health.cacheMs` (the
   * console shows it with its time; a page view never waits for KMS round
   * trips). The first call waits for a probe.
   */
  async latest(): Promise<ReadinessReport> {
    const last = this.cache.peek()
    const refresh = this.ready()
    if (!last) return refresh
    refresh.catch(() => {})
    return last.value
  }

  /**
   * Runs every check now; `isHealthy` is false when any failed.
   */
  async probe(): Promise<ReadinessReport> {
    const checks = new HealthChecks().register(await this.#checks())
    const report = await checks.run()
    return {
      isHealthy: report.isHealthy,
      status: report.status,
      finishedAt: new Date(report.finishedAt).toISOString(),
      governance: this.#governance(),
      checks: report.checks.map((check) => ({
        name: check.name,
        status: check.status,
        message: check.message,
        finishedAt: new Date(check.finishedAt).toISOString(),
        ...(check.meta && typeof check.meta.ms === 'number' ? { meta: { ms: check.meta.ms } } : {}),
      })),
    }
  }

  async #checks(): Promise<BaseCheck[]> {
    const checks: BaseCheck[] = [new DatabaseCheck()]
    const keks = await this.#keks()
    const drivers = new Set<string>([
      String(this.kms.config.default),
      ...keks.map((kek) => this.kms.driverNameFor(kek)),
    ])
    for (const name of drivers) {
      checks.push(new KmsReachableCheck(name, () => this.kms.use(name)))
    }
    for (const kek of keks) {
      checks.push(new KekRoundTripCheck(kek, () => this.kms.forKek(kek)))
    }
    return checks
  }

  /**
   * Managed KEKs from config, else KEKs named by rows (from the shared,
   * briefly cached counts; none when the database is down).
   */
  async #keks(): Promise<string[]> {
    const managed = this.policies.managedNames()
    if (managed.length > 0) return managed
    try {
      const { counts } = await withTimeout(this.entryCounts.get(), CHECK_TIMEOUT_MS, 'row counts')
      return [...counts.keys()].sort()
    } catch {
      return []
    }
  }
}
