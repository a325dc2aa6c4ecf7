/*
|--------------------------------------------------------------------------
| The measured algorithms
|--------------------------------------------------------------------------
|
| - published: every stale row loaded into memory, one KMS rewrap call and
|   one UPDATE per row, 100 rows at a time with Promise.all, 100 ms sleep
|   after each 100, a hard-coded target version;
| - rewrap: KeyRotationService.rotate (default throttle) with a given KMS
|   manager swapped into the container; its store and driver are wrapped
|   to time the SELECTs, the KMS calls and the UPDATEs;
| - floor: the same keyset scan and bulk `UPDATE … FROM unnest` CAS per
|   batch, pipelined like the service, no crypto at all.
|
*/
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApplicationService } from '@adonisjs/core/types'
import type { KmsDriver } from '#kms/contract'
import { KmsManager } from '#kms/kms_manager'
import { KeyRotationService } from '#services/key_rotation_service'
import { RotationStore, pgArray, type RotationRun, type StaleRow } from '#services/rotation_store'
import { round } from './sampler.js'

type Db = (typeof import('@adonisjs/lucid/services/db'))['default']

/** Time spent per step of a run (summed over batches; steps overlap). */
export interface StepTimings {
  batches: number
  /** Keyset SELECTs of the batches, ms. */
  selectMs: number
  /** KMS rewrap calls, ms. */
  kmsMs: number
  /** Batch UPDATEs (with the run's cursor), ms. */
  updateMs: number
  /** Stale-row counts, ms. */
  countMs: number
}

function newTimings(): StepTimings {
  return { batches: 0, selectMs: 0, kmsMs: 0, updateMs: 0, countMs: 0 }
}

/** Rounded copy for the report. */
export function roundTimings(t: StepTimings): StepTimings {
  return {
    batches: t.batches,
    selectMs: round(t.selectMs),
    kmsMs: round(t.kmsMs),
    updateMs: round(t.updateMs),
    countMs: round(t.countMs),
  }
}

async function timed<T>(timings: StepTimings, step: keyof StepTimings, work: () => Promise<T>) {
  const started = performance.now()
  try {
    return await work()
  } finally {
    timings[step] += performance.now() - started
  }
}

/**
 * The service's store, timing the statements of the rewrap loop.
 */
class TimedRotationStore extends RotationStore {
  constructor(private timings: StepTimings) {
    super()
  }

  /** Times the keyset SELECT. */
  override readBatch(kekName: string, version: number, afterId: string, limit: number) {
    return timed(this.timings, 'selectMs', () => super.readBatch(kekName, version, afterId, limit))
  }

  /** Times the batch commit. */
  override commitBatch(input: Parameters<RotationStore['commitBatch']>[0]) {
    this.timings.batches++
    return timed(this.timings, 'updateMs', () => super.commitBatch(input))
  }

  /** Times the stale counts. */
  override countStale(kekName: string, target: number) {
    return timed(this.timings, 'countMs', () => super.countStale(kekName, target))
  }
}

/**
 * A driver that delegates to `inner` and times its rewrap calls.
 */
export function timedDriver(inner: KmsDriver, timings: StepTimings): KmsDriver {
  return {
    createKey: (name) => inner.createKey(name),
    readKey: (name) => inner.readKey(name),
    listKeys: () => inner.listKeys(),
    rotateKey: (name) => inner.rotateKey(name),
    configureKey: (name, config) => inner.configureKey(name, config),
    trimKey: (name, min) => inner.trimKey(name, min),
    generateDataKey: (name) => inner.generateDataKey(name),
    wrap: (name, deks) => inner.wrap(name, deks),
    unwrap: (name, wrapped) => inner.unwrap(name, wrapped),
    rewrap: (name, wrapped, version) =>
      timed(timings, 'kmsMs', () => inner.rewrap(name, wrapped, version)),
    close: () => inner.close(),
  }
}

/** The counts of a finished run the bench reports (from the service or `rotate:kek --json`). */
export function runSummary(run: ServiceRunResult['run']): ServiceRunResult['run'] {
  return {
    status: run.status,
    rewrapped: run.rewrapped,
    skipped: run.skipped,
    failed: run.failed,
    targetVersion: run.targetVersion,
  }
}

/** What a Rewrap run did. */
export interface ServiceRunResult {
  seconds: number
  run: Pick<RotationRun, 'status' | 'rewrapped' | 'skipped' | 'failed' | 'targetVersion'>
  timings: StepTimings
}

/**
 * KeyRotationService.rotate at full speed (`niceRatio: 0`, no sleep, no
 * rate limit; other options from config/rewrap.ts), `driver` (not yet
 * instrumented) behind a KmsManager swapped into the container for the
 * duration of the run.
 */
export async function runRewrap(
  app: ApplicationService,
  driverName: string,
  driver: KmsDriver,
  kekName: string
): Promise<ServiceRunResult> {
  const timings = newTimings()
  // The manager instruments the driver for /metrics, as the app's does: pass a raw driver.
  const manager = new KmsManager({
    default: driverName,
    drivers: { [driverName]: () => timedDriver(driver, timings) },
  })
  app.container.swap(KmsManager, () => manager)
  try {
    app.container.swap(RotationStore, () => new TimedRotationStore(timings))
    const service = await app.container.make(KeyRotationService)
    const started = performance.now()
    // Full speed: the engine's throughput, whatever other sessions do (the
    // default throttle is measured on the rotate:kek variant).
    const run = await service.rotate(kekName, {
      trigger: 'cli',
      requestedBy: 'bench',
      niceRatio: 0,
    })
    const seconds = (performance.now() - started) / 1000
    return { seconds, run: runSummary(run), timings }
  } finally {
    app.container.restore(KmsManager)
    app.container.restore(RotationStore)
  }
}

/** What the published algorithm did on its subset. */
export interface PublishedResult {
  /** Stale rows loaded into memory (all of them). */
  loadedRows: number
  /** Seconds the load took. */
  loadSeconds: number
  /** Rows really rewrapped (the capped subset). */
  processedRows: number
  /** Seconds of the per-row loop on the subset. */
  loopSeconds: number
  /** Rows/s of the loop. */
  loopRowsPerSecond: number
  /** Load + every row at the loop's rate. */
  extrapolatedSeconds: number
  failed: number
}

/**
 * The published algorithm, run on the first `cap` of the stale rows and
 * extrapolated to all of them.
 */
export async function runPublished(
  db: Db,
  driver: KmsDriver,
  kekName: string,
  target: number,
  cap: number
): Promise<PublishedResult> {
  const loadStarted = performance.now()
  // "Load every stale row": all of them, into one array (the RSS shows it).
  const { rows } = (await db.rawQuery(
    `SELECT id, wrapped_dek FROM vault_entries WHERE kek_name = ? AND kek_version < ?`,
    [kekName, target]
  )) as { rows: Array<{ id: string; wrapped_dek: string }> }
  const loadSeconds = (performance.now() - loadStarted) / 1000
  const subset = rows.slice(0, cap)
  let failed = 0
  const loopStarted = performance.now()
  for (let i = 0; i < subset.length; i += 100) {
    await Promise.all(
      subset.slice(i, i + 100).map(async (row) => {
        const [result] = await driver.rewrap(kekName, [row.wrapped_dek], target)
        if (!result.ok) {
          failed++
          return
        }
        await db.rawQuery(
          `UPDATE vault_entries SET wrapped_dek = ?, kek_version = ? WHERE id = ?`,
          [result.wrapped, target, row.id]
        )
      })
    )
    await sleep(100)
  }
  const loopSeconds = (performance.now() - loopStarted) / 1000
  const loopRowsPerSecond = subset.length / loopSeconds
  return {
    loadedRows: rows.length,
    loadSeconds,
    processedRows: subset.length,
    loopSeconds,
    loopRowsPerSecond,
    extrapolatedSeconds: loadSeconds + rows.length / loopRowsPerSecond,
    failed,
  }
}

/** A reversible string change of a wrapped DEK (same length, other bytes). */
export type WrapTransform = (wrapped: string) => string

/** Moves the payload's first character to its end. */
export const scramble: WrapTransform = (wrapped) => {
  const cut = wrapped.indexOf(':', 6) + 1
  return wrapped.slice(0, cut) + wrapped.slice(cut + 1) + wrapped[cut]
}

/** Undoes {@link scramble}. */
export const unscramble: WrapTransform = (wrapped) => {
  const cut = wrapped.indexOf(':', 6) + 1
  return wrapped.slice(0, cut) + wrapped[wrapped.length - 1] + wrapped.slice(cut, -1)
}

/** What one floor pass did. */
export interface FloorResult {
  seconds: number
  rows: number
  /** Rows the CAS did not match (must be 0: nothing else writes). */
  missed: number
  timings: StepTimings
}

/**
 * The database-only floor: keyset scan of the rows of `kekName` at
 * `fromVersion`, each batch's new values computed by `transform`, one CAS
 * `UPDATE … FROM unnest` per batch setting `kek_version = toVersion`; the
 * next SELECT overlaps the current UPDATE, as in the service.
 */
export async function runFloor(
  db: Db,
  options: {
    table: string
    kekName: string
    fromVersion: number
    toVersion: number
    batchSize: number
    transform: WrapTransform
  }
): Promise<FloorResult> {
  const { table, kekName, fromVersion, toVersion, batchSize, transform } = options
  const timings = newTimings()
  const read = (after: string) =>
    timed(timings, 'selectMs', async (): Promise<StaleRow[]> => {
      const { rows } = await db.rawQuery(
        `SELECT id, wrapped_dek FROM ${table}
          WHERE kek_name = ? AND kek_version = ? AND id > ?
          ORDER BY id LIMIT ?`,
        [kekName, fromVersion, after, batchSize]
      )
      return rows.map((r: any): StaleRow => ({ id: String(r.id), wrappedDek: r.wrapped_dek }))
    })
  const started = performance.now()
  let total = 0
  let missed = 0
  let next = read('0')
  for (;;) {
    const rows = await next
    if (rows.length === 0) break
    next = read(rows[rows.length - 1].id)
    next.catch(() => {})
    const ids = rows.map((r: StaleRow) => r.id)
    const old = rows.map((r: StaleRow) => r.wrappedDek)
    const fresh = old.map(transform)
    timings.batches++
    const result = await timed(timings, 'updateMs', () =>
      db.rawQuery(
        `UPDATE ${table} v
            SET wrapped_dek = u.new, kek_version = ?, rotated_at = now()
           FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(id, old, new)
          WHERE v.id = u.id AND v.wrapped_dek = u.old`,
        [toVersion, pgArray(ids), pgArray(old), pgArray(fresh)]
      )
    )
    total += rows.length
    missed += rows.length - Number(result.rowCount)
  }
  return { seconds: (performance.now() - started) / 1000, rows: total, missed, timings }
}
