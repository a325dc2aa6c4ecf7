/*
|--------------------------------------------------------------------------
| The benchmark run
|--------------------------------------------------------------------------
|
| One process, one run, every variant side by side (the machine is shared
| and noisy: compare only within a run). See docs/benchmarks.md.
|
| 1. Own database, migrated by `node ace migration:run --force`; the app
|    booted in-process (the services are called directly).
| 2. Children: `node ace kms:serve` (vault driver) and bin/server.ts
|    (foreground GET /entries/:id load from a worker thread).
| 3. Smaller scale (--rss-rows): seed, floor, Rewrap local, Rewrap vault.
| 4. Full scale (--rows): seed the rest, idle foreground window, floor,
|    Rewrap local, Rewrap vault, floor again, HOT experiment, published.
|    Every Rewrap variant rotates the KEK first (Step A) and rewraps all
|    rows to the new version: each starts from the same N stale rows.
|
*/
import 'reflect-metadata'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Ignitor } from '@adonisjs/core'
import type { ApplicationService } from '@adonisjs/core/types'
import type { KmsDriver } from '#kms/contract'
import { describeUrl, prepareDatabase, type BenchDatabase } from './database.js'
import { ForegroundLoad, type ForegroundStats } from './load.js'
import { parseOptions, type BenchOptions } from './options.js'
import { answers, runAce, startChild, TS_LOADER, type Child } from './processes.js'
import { addRatios, table, writeJson, type Measurement, type TargetResult } from './report.js'
import { PhaseSampler, round, type PhaseResources } from './sampler.js'
import type { HotResult } from './hot.js'
import { freePort } from '../embedded_postgres.js'

type Db = (typeof import('@adonisjs/lucid/services/db'))['default']
type Variants = typeof import('./variants.js')

/**
 * Modules that import app services: loaded once the app has booted (the
 * services read the app at import time).
 */
let V: Variants

const APP_ROOT = new URL('../../', import.meta.url)
const started = performance.now()

/** Progress lines on stderr (never a secret). */
export function log(message: string) {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[bench ${seconds}s] ${message}\n`)
}

/** RSS of this process at points of the run (what the phases start from). */
const checkpoints: Array<{ at: string; rssMb: number; heapUsedMb: number }> = []

function checkpoint(at: string) {
  const usage = process.memoryUsage()
  checkpoints.push({
    at,
    rssMb: round(usage.rss / 1024 / 1024, 1),
    heapUsedMb: round(usage.heapUsed / 1024 / 1024, 1),
  })
}

function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  return () => gc()
}

async function bootApp(): Promise<ApplicationService> {
  const ignitor = new Ignitor(APP_ROOT, {
    importer: (filePath: string) =>
      filePath.startsWith('./') || filePath.startsWith('../')
        ? import(new URL(filePath, APP_ROOT).href)
        : import(filePath),
  })
  const app = ignitor
    .tap((application) => {
      application.booting(async () => {
        await import('#start/env')
      })
    })
    .createApp('console')
  await app.init()
  await app.boot()
  await app.start(async () => {})
  return app
}

/** Everything a phase needs. */
interface Context {
  options: BenchOptions
  app: ApplicationService
  db: Db
  kekName: string
  /** The local driver as the app resolves it (instrumented). */
  local: KmsDriver
  /** The local driver, not instrumented (the swapped manager does it). */
  localRaw: KmsDriver
  vault: KmsDriver | null
  load: ForegroundLoad
  children: Child[]
  gc: () => void
  /** The version every row of the KEK is at between phases. */
  current: number
  /** Ace entry of the rotate:kek variant: the compiled build, or ace.js with --cli-from-source. */
  cliEntry: string
  ids: { minId: number; maxId: number }
}

/**
 * Brings the table to a comparable state before a measured phase: dead
 * tuples vacuumed, statistics fresh, dirty pages checkpointed, JS heap
 * collected. Not timed.
 */
async function settle(ctx: Context, tables = ['vault_entries']) {
  for (const name of tables) await ctx.db.rawQuery(`VACUUM (ANALYZE) ${name}`)
  await ctx.db.rawQuery('CHECKPOINT').catch(() => {})
  ctx.gc()
  await sleep(500)
}

async function walLsn(db: Db): Promise<string | null> {
  try {
    const { rows } = await db.rawQuery('SELECT pg_current_wal_lsn()::text AS lsn')
    return rows[0].lsn
  } catch {
    return null
  }
}

async function walDiff(db: Db, from: string, to: string): Promise<number> {
  const { rows } = await db.rawQuery('SELECT pg_wal_lsn_diff(?, ?)::bigint AS bytes', [to, from])
  return Number(rows[0].bytes)
}

/**
 * Runs `work` as one measured phase: resources sampled, the foreground
 * load running when `withLoad`.
 */
async function measure<T>(
  ctx: Context,
  label: string,
  withLoad: boolean,
  work: () => Promise<T>,
  tables?: string[]
): Promise<{ value: T; resources: PhaseResources; foreground: ForegroundStats | null }> {
  await settle(ctx, tables)
  const sampler = new PhaseSampler(
    [...ctx.children, ctx.load],
    () => walLsn(ctx.db),
    async () => {
      const result = await ctx.db.rawQuery(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`
      )
      return result.rows.map((r: { pid: number }) => r.pid)
    },
    ctx.gc
  )
  await sampler.start()
  if (withLoad) ctx.load.start(label, ctx.ids)
  let value: T
  let foreground: ForegroundStats | null = null
  try {
    value = await work()
  } finally {
    if (withLoad) foreground = await ctx.load.stop()
  }
  const resources = await sampler.stop((from, to) => walDiff(ctx.db, from, to))
  return { value, resources, foreground }
}

/**
 * `node ace build` (the production build operators run, no TS loader):
 * answers the entry of its Ace file. It resolves packages from the
 * project's node_modules (build/ sits inside the project).
 */
async function buildApp(): Promise<string> {
  log('building the app (node ace build) for the rotate:kek variant')
  await runAce(['build'])
  return 'build/ace.js'
}

/**
 * Seeds `rows` rows with `node ace demo:seed` (EntryService.seed in its own
 * process, so the benchmark process's memory stays what the rotations use).
 */
async function seed(ctx: Context, rows: number) {
  const result = await runAce([
    'demo:seed',
    '--kek',
    ctx.kekName,
    '--rows',
    String(rows),
    '--batch',
    String(ctx.options.seedBatch),
    '--json',
  ])
  const seconds = JSON.parse(result.stdout.trim().split('\n').pop()!).seconds as number
  log(
    `  seeded ${rows.toLocaleString()} rows in ${seconds.toFixed(1)} s (${Math.round(rows / seconds).toLocaleString()} rows/s)`
  )
  const { rows: bounds } = await ctx.db.rawQuery(
    `SELECT min(id)::text AS lo, max(id)::text AS hi, count(*)::bigint AS n,
            count(DISTINCT kek_version)::int AS versions, max(kek_version) AS v
       FROM vault_entries WHERE kek_name = ?`,
    [ctx.kekName]
  )
  if (bounds[0].versions !== 1) {
    throw new Error(
      `expected every row at one version before measuring, found ${bounds[0].versions}`
    )
  }
  ctx.current = bounds[0].v
  ctx.ids = { minId: Number(bounds[0].lo), maxId: Number(bounds[0].hi) }
  return { seconds, totalRows: Number(bounds[0].n) }
}

function measurement(
  key: string,
  label: string,
  scaleRows: number,
  processedRows: number,
  seconds: number,
  phase: { resources: PhaseResources; foreground: ForegroundStats | null },
  details: Record<string, unknown>,
  extrapolated = false
): Measurement {
  return {
    key,
    label,
    scaleRows,
    processedRows,
    seconds: round(seconds, 2),
    rowsPerSecond: Math.round(processedRows / seconds),
    extrapolated,
    vsPublished: null,
    vsFloor: null,
    resources: phase.resources,
    foreground: phase.foreground,
    details,
  }
}

function rewrapDetails(run: Awaited<ReturnType<Variants['runRewrap']>>, walBytes: number | null) {
  return {
    run: run.run,
    stepsMs: V.roundTimings(run.timings),
    walBytesPerRow:
      walBytes === null ? null : Math.round(walBytes / Math.max(1, run.run.rewrapped)),
  }
}

async function floorPair(ctx: Context, scaleRows: number, index: number): Promise<Measurement[]> {
  const rotated = await ctx.local.rotateKey(ctx.kekName)
  const target = rotated.latestVersion
  const batchSize = ctx.app.config.get<number>('rewrap.rotation.batchSize')
  const out: Measurement[] = []
  for (const [pass, from, to, transform] of [
    [1, ctx.current, target, V.scramble],
    [2, target, ctx.current, V.unscramble],
  ] as const) {
    const key = `floor-${index + pass - 1}`
    log(`  ${key}: keyset + CAS UPDATE only, v${from} → v${to}`)
    const phase = await measure(ctx, key, true, () =>
      V.runFloor(ctx.db, {
        table: 'vault_entries',
        kekName: ctx.kekName,
        fromVersion: from,
        toVersion: to,
        batchSize,
        transform,
      })
    )
    const r = phase.value
    if (r.rows !== scaleRows || r.missed !== 0) {
      throw new Error(`${key} touched ${r.rows} rows (${r.missed} missed), expected ${scaleRows}`)
    }
    out.push(
      measurement(key, `floor pass ${index + pass - 1}`, scaleRows, r.rows, r.seconds, phase, {
        stepsMs: V.roundTimings(r.timings),
        batchSize,
        walBytesPerRow:
          phase.resources.walBytes === null ? null : Math.round(phase.resources.walBytes / r.rows),
      })
    )
    log(`    ${out[out.length - 1].rowsPerSecond.toLocaleString()} rows/s`)
  }
  return out
}

async function rewrapVariant(
  ctx: Context,
  key: 'local' | 'vault',
  driver: KmsDriver,
  scaleRows: number
): Promise<Measurement> {
  log(`  ${key}: KeyRotationService.rotate with the ${key} driver`)
  const phase = await measure(ctx, key, true, () => V.runRewrap(ctx.app, key, driver, ctx.kekName))
  const r = phase.value
  if (r.run.status !== 'completed' || r.run.rewrapped !== scaleRows) {
    throw new Error(
      `${key} rotation ended ${r.run.status} with ${r.run.rewrapped}/${scaleRows} rows rewrapped`
    )
  }
  ctx.current = r.run.targetVersion!
  const m = measurement(
    key,
    key === 'local' ? 'Rewrap, local KMS' : 'Rewrap, vault driver → kms:serve',
    scaleRows,
    r.run.rewrapped,
    r.seconds,
    phase,
    rewrapDetails(r, phase.resources.walBytes)
  )
  log(`    ${m.rowsPerSecond.toLocaleString()} rows/s, peak RSS ${m.resources.peakRssMb} MB`)
  log(
    `    slowest foreground requests (ms into the window: ms): ${(phase.foreground?.slowest ?? []).map((x) => `${x.atMs}: ${x.ms}`).join(', ')}`
  )
  return m
}

/**
 * `node ace rotate:kek <kek> --json` as a child process: the real command,
 * its own peak RSS (VmHWM, app boot included) and its run's duration.
 */
async function cliVariant(ctx: Context, scaleRows: number, full: boolean): Promise<Measurement> {
  const nodeOptions = ctx.options.cliNodeOptions
  // An idle window right before (same table state, same moment of the machine's load): the
  // baseline of this variant's foreground-latency target.
  let idleBefore: ForegroundStats | null = null
  if (full) {
    log(`  idle foreground window before rotate:kek (${ctx.options.idleSeconds} s)`)
    const window = await measure(ctx, 'idle-cli', true, () => sleep(ctx.options.idleSeconds * 1000))
    idleBefore = window.foreground
    log(`    idle p50 ${idleBefore?.p50Ms} ms, p99 ${idleBefore?.p99Ms} ms`)
  }
  log(
    `  cli: NODE_OPTIONS="${nodeOptions}" node ${ctx.cliEntry} rotate:kek --json (local KMS, own process, default throttle)`
  )
  const phase = await measure(ctx, 'cli', true, () =>
    runAce(
      ['rotate:kek', ctx.kekName, '--json', ...ctx.options.cliArgs],
      { NODE_OPTIONS: nodeOptions },
      { sampleRss: true, entry: ctx.cliEntry }
    )
  )
  // And one right after: a baseline that drifted during the run shows up as a gap between the two.
  let idleAfter: ForegroundStats | null = null
  if (full) {
    log(`  idle foreground window after rotate:kek (${ctx.options.idleSeconds} s)`)
    const window = await measure(ctx, 'idle-after-cli', true, () =>
      sleep(ctx.options.idleSeconds * 1000)
    )
    idleAfter = window.foreground
    log(`    idle p50 ${idleAfter?.p50Ms} ms, p99 ${idleAfter?.p99Ms} ms`)
  }
  const r = phase.value
  const run = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    status: string
    rewrapped: number
    skipped: number
    failed: number
    targetVersion: number
    startedAt: string
    finishedAt: string
  }
  if (run.status !== 'completed' || run.rewrapped !== scaleRows) {
    throw new Error(
      `rotate:kek ended ${run.status} with ${run.rewrapped}/${scaleRows} rows rewrapped`
    )
  }
  ctx.current = run.targetVersion
  const runSeconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000
  const m = measurement(
    'cli',
    'rotate:kek (CLI process, local)',
    scaleRows,
    run.rewrapped,
    runSeconds,
    phase,
    {
      run: V.runSummary(run as Parameters<typeof V.runSummary>[0]),
      entry: ctx.cliEntry,
      idleBefore,
      idleAfter,
      nodeOptions,
      args: ctx.options.cliArgs,
      processSeconds: round(r.seconds, 2),
      processPeakRssMb: r.peakRssMb === null ? null : round(r.peakRssMb, 1),
      walBytesPerRow:
        phase.resources.walBytes === null
          ? null
          : Math.round(phase.resources.walBytes / run.rewrapped),
    }
  )
  log(
    `    ${m.rowsPerSecond.toLocaleString()} rows/s, process peak RSS ${m.details.processPeakRssMb} MB`
  )
  log(
    `    slowest foreground requests (ms into the window: ms): ${(phase.foreground?.slowest ?? []).map((x) => `${x.atMs}: ${x.ms}`).join(', ')}`
  )
  return m
}

async function publishedVariant(ctx: Context, scaleRows: number): Promise<Measurement> {
  const rotated = await ctx.local.rotateKey(ctx.kekName)
  const target = rotated.latestVersion
  const cap = ctx.options.publishedRows
  log(
    `  published: per-row rewrap + UPDATE, 100 at a time, 100 ms sleeps (${cap} rows, extrapolated)`
  )
  const phase = await measure(ctx, 'published', true, () =>
    V.runPublished(ctx.db, ctx.local, ctx.kekName, target, cap)
  )
  const r = phase.value
  if (r.failed > 0) throw new Error(`published algorithm: ${r.failed} rows failed`)
  const m = measurement(
    'published',
    'published algorithm',
    scaleRows,
    scaleRows,
    r.extrapolatedSeconds,
    phase,
    {
      loadedRows: r.loadedRows,
      loadSeconds: round(r.loadSeconds, 2),
      processedRows: r.processedRows,
      loopSeconds: round(r.loopSeconds, 2),
      loopRowsPerSecond: Math.round(r.loopRowsPerSecond),
      kms: 'local driver, one rewrap call per row',
    },
    true
  )
  log(
    `    ${m.rowsPerSecond.toLocaleString()} rows/s (extrapolated), peak RSS ${m.resources.peakRssMb} MB`
  )
  return m
}

async function scale(ctx: Context, scaleRows: number, full: boolean): Promise<Measurement[]> {
  const results: Measurement[] = []
  results.push(...(await floorPair(ctx, scaleRows, 1)))
  results.push(await rewrapVariant(ctx, 'local', ctx.localRaw, scaleRows))
  if (ctx.vault) results.push(await rewrapVariant(ctx, 'vault', ctx.vault, scaleRows))
  if (ctx.options.cli) results.push(await cliVariant(ctx, scaleRows, full))
  if (full) {
    results.push(...(await floorPair(ctx, scaleRows, 3)))
  }
  return results
}

function machineInfo(pgVersion: string, pgSettings: Record<string, string>) {
  let commit: string | null = null
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
  } catch {}
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? null,
    availableParallelism: os.availableParallelism(),
    totalMemoryMb: Math.round(os.totalmem() / 1024 / 1024),
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: pgVersion,
    postgresSettings: pgSettings,
    gitCommit: commit,
  }
}

function evaluateTargets(
  full: Measurement[],
  small: Measurement[],
  idle: ForegroundStats | null,
  floorFull: number | null
): TargetResult[] {
  const pct = (v: number) => `${(v * 100).toFixed(0)}%`
  const targets: TargetResult[] = []
  const local = full.find((m) => m.key === 'local')
  const vault = full.find((m) => m.key === 'vault')
  if (local && floorFull) {
    targets.push({
      target: 'Rewrap local ≥ 50% of the floor (rows/s)',
      measured: `${local.rowsPerSecond.toLocaleString()} rows/s = ${pct(local.vsFloor!)} of ${Math.round(floorFull).toLocaleString()}`,
      pass: local.vsFloor! >= 0.5,
    })
  }
  if (vault && floorFull) {
    targets.push({
      target: 'Rewrap vault ≥ 25% of the floor (rows/s)',
      measured: `${vault.rowsPerSecond.toLocaleString()} rows/s = ${pct(vault.vsFloor!)} of ${Math.round(floorFull).toLocaleString()}`,
      pass: vault.vsFloor! >= 0.25,
    })
  }
  const peaks = (list: Measurement[]) =>
    list.filter((m) => m.key === 'local' || m.key === 'vault').map((m) => m.resources.peakRssMb)
  const fullPeak = Math.max(...peaks(full))
  if (small.length) {
    const smallPeak = Math.max(...peaks(small))
    const growth = fullPeak - smallPeak
    targets.push({
      target:
        'In-process rotations: peak RSS of the bench process, small → full scale (the product process is the rotate:kek line)',
      measured: `${smallPeak} MB at ${small[0].scaleRows.toLocaleString()} rows → ${fullPeak} MB at ${full[0].scaleRows.toLocaleString()} rows (${growth >= 0 ? '+' : ''}${round(growth, 1)} MB; bench process under the TS loader)`,
      pass: null,
    })
  }
  const cli = full.find((m) => m.key === 'cli')
  const cliPeak = (list: Measurement[]) =>
    list.find((m) => m.key === 'cli')?.details.processPeakRssMb as number | null | undefined
  const cliFull = cliPeak(full)
  const cliSmall = cliPeak(small)
  if (cliFull !== null && cliFull !== undefined) {
    const growth = cliSmall === null || cliSmall === undefined ? null : cliFull - cliSmall
    targets.push({
      target: `Peak RSS of the \`rotate:kek\` process (${cli?.details.entry}, NODE_OPTIONS="${cli?.details.nodeOptions}", VmHWM, boot included) ≤ 200 MB and flat (≤ +25 MB)`,
      measured:
        growth === null
          ? `${cliFull} MB at ${full[0].scaleRows.toLocaleString()} rows`
          : `${cliSmall} MB at ${small[0].scaleRows.toLocaleString()} rows → ${cliFull} MB at ${full[0].scaleRows.toLocaleString()} rows (${growth >= 0 ? '+' : ''}${round(growth, 1)} MB)`,
      pass: cliFull <= 200 && (cliSmall ?? 0) <= 200 && (growth === null || growth <= 25),
    })
  }
  const ratioOf = (fg: ForegroundStats) => fg.p99Ms! / idle!.p99Ms!
  const idleBefore = cli?.details.idleBefore as ForegroundStats | null | undefined
  const idleAfter = cli?.details.idleAfter as ForegroundStats | null | undefined
  if (cli?.foreground?.p99Ms && idleBefore?.p99Ms) {
    const fg = cli.foreground
    const ratio = fg.p99Ms! / idleBefore.p99Ms
    targets.push({
      target:
        'Foreground p99 during `rotate:kek` with the default throttle ≤ 1.5× idle (the idle window just before it)',
      measured: `${fg.p99Ms} ms vs ${idleBefore.p99Ms} ms idle (${ratio.toFixed(2)}×; ${[
        idleAfter?.p99Ms
          ? `${(fg.p99Ms! / idleAfter.p99Ms).toFixed(2)}× the idle window right after (${idleAfter.p99Ms} ms)`
          : null,
        idle?.p99Ms ? `${ratioOf(fg).toFixed(2)}× the first idle window` : null,
      ]
        .filter(Boolean)
        .join(', ')}) at ${cli.rowsPerSecond.toLocaleString()} rows/s`,
      pass: ratio <= 1.5,
    })
  }
  for (const m of [cli, local]) {
    if (!m?.foreground) continue
    targets.push({
      target: `Zero failed foreground requests during ${m.key === 'cli' ? '`rotate:kek` (default throttle)' : 'the full-speed local rotation'}`,
      measured: `${m.foreground.failed} failed of ${m.foreground.sent} (${m.foreground.skipped} not sent: concurrency limit)`,
      pass: m.foreground.failed === 0,
    })
  }
  if (local?.foreground?.p99Ms && idle?.p99Ms) {
    targets.push({
      target: 'Foreground p99 during the full-speed local rotation (--nice-ratio 0)',
      measured: `${local.foreground.p99Ms} ms vs ${idle.p99Ms} ms idle (${ratioOf(local.foreground).toFixed(2)}×)`,
      pass: null,
    })
  }
  return targets
}

/**
 * Runs the benchmark with command-line `argv`.
 */
export async function main(argv: string[]) {
  const options = parseOptions(argv)
  const startedAt = new Date()
  const gc = exposeGc()
  checkpoint('start')
  log(
    `rows ${options.rows.toLocaleString()}, small scale ${options.rssRows.toLocaleString()}, published subset ${options.publishedRows.toLocaleString()}`
  )

  let database: BenchDatabase | undefined
  let app: ApplicationService | undefined
  const children: Child[] = []
  let load: ForegroundLoad | undefined
  try {
    database = await prepareDatabase()
    log(`database ${describeUrl(database.url)} (${database.source})`)
    process.env.DATABASE_URL = database.url
    process.env.APP_KEY ??= randomBytes(32).toString('base64url')
    process.env.KMS_ROOT_KEY ??= randomBytes(32).toString('base64')
    process.env.NODE_ENV = 'production'
    process.env.LOG_LEVEL ??= 'warn'
    process.env.KMS_DRIVER = 'local'

    await runAce(['migration:run', '--force'])
    log('migrated')
    const cliEntry = options.cliFromSource ? 'ace.js' : await buildApp()
    app = await bootApp()
    V = await import('./variants.js')
    const { hotExperiment } = await import('./hot.js')
    const { pgArray } = await import('#services/rotation_store')
    checkpoint('app booted')
    const { default: db } = await import('@adonisjs/lucid/services/db')
    const { KmsManager } = await import('#kms/kms_manager')
    const manager = await app.container.make(KmsManager)
    // As the app resolves it (instrumented): for the published algorithm.
    const local = await manager.use('local')
    // Raw: the swapped managers of the Rewrap variants instrument it themselves.
    const { createLocalDriver } = await import('#kms/drivers/local_factory')
    const localRaw = await createLocalDriver(app, { rootKey: process.env.KMS_ROOT_KEY })
    const kekName = `bench_${startedAt.getTime()}`
    await local.createKey(kekName)

    const versionResult = await db.rawQuery('SELECT version() AS v')
    const pgVersion = versionResult.rows[0].v as string
    const settingResult = await db.rawQuery(
      `SELECT name, setting, unit FROM pg_settings WHERE name = ANY(?)`,
      [
        pgArray([
          'shared_buffers',
          'synchronous_commit',
          'fsync',
          'wal_level',
          'max_wal_size',
          'checkpoint_timeout',
          'full_page_writes',
          'autovacuum',
        ]),
      ]
    )
    const settingRows = settingResult.rows as Array<{
      name: string
      setting: string
      unit: string | null
    }>
    const pgSettings = Object.fromEntries(
      settingRows.map((r) => [r.name, r.unit ? `${r.setting} ${r.unit}` : r.setting])
    )

    // kms:serve for the vault driver (same kms_keys table and root key).
    let vault: KmsDriver | null = null
    if (!options.skipVault) {
      const port = await freePort()
      const token = randomBytes(24).toString('base64url')
      children.push(
        await startChild(
          'kms-serve',
          ['ace.js', 'kms:serve', '--port', String(port)],
          { KMS_SERVE_TOKEN: token },
          () => answers(`http://127.0.0.1:${port}/v1/sys/health`)
        )
      )
      const { VaultKmsDriver } = await import('#kms/drivers/vault')
      vault = new VaultKmsDriver({
        endpoint: `http://127.0.0.1:${port}`,
        token,
        mount: 'transit',
        timeoutMs: 30_000,
        batchSize: 1000,
        concurrency: 4,
        retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 5_000 },
      })
      log(`kms:serve listening on 127.0.0.1:${port}`)
    }

    // The HTTP server and a read-only token for the foreground load.
    const httpPort = await freePort()
    children.push(
      await startChild(
        'server',
        [TS_LOADER, 'bin/server.ts'],
        { PORT: String(httpPort), HOST: '127.0.0.1' },
        () => answers(`http://127.0.0.1:${httpPort}/health/live`)
      )
    )
    const { TokenService } = await import('#services/token_service')
    const tokens = await app.container.make(TokenService)
    const created = await tokens.create({ name: 'bench', abilities: ['entries:read'] })
    load = new ForegroundLoad({
      port: httpPort,
      token: created.token,
      rate: options.rate,
      concurrency: options.concurrency,
      maxWindowMs: 20 * 60_000,
      timeoutMs: 10_000,
    })
    log(`HTTP server listening on 127.0.0.1:${httpPort}`)
    checkpoint('children and load worker started')

    const ctx: Context = {
      options,
      app,
      db,
      kekName,
      local,
      localRaw,
      vault,
      load,
      children,
      gc,
      current: 1,
      cliEntry,
      ids: { minId: 1, maxId: 1 },
    }

    const seeding: Record<string, number> = {}
    let small: Measurement[] = []
    if (options.rssRows > 0) {
      log(`small scale: seeding ${options.rssRows.toLocaleString()} rows`)
      const seededSmall = await seed(ctx, options.rssRows)
      seeding[String(options.rssRows)] = round(seededSmall.seconds, 1)
      ctx.gc()
      checkpoint(`seeded ${options.rssRows}`)
      small = await scale(ctx, options.rssRows, false)
      addRatios(small)
      checkpoint('small scale done')
    }

    log(`full scale: seeding ${(options.rows - options.rssRows).toLocaleString()} more rows`)
    const seeded = await seed(ctx, options.rows - options.rssRows)
    seeding[String(options.rows - options.rssRows)] = round(seeded.seconds, 1)
    gc()
    checkpoint(`seeded ${options.rows}`)
    if (seeded.totalRows !== options.rows) {
      throw new Error(`expected ${options.rows} rows, found ${seeded.totalRows}`)
    }

    // Warm-up (not measured): the server's first requests after seeding pay for JIT, cold
    // pages of the new rows and pool connections, which would otherwise land in the idle p99.
    log('foreground warm-up (5 s, not measured)')
    await settle(ctx)
    ctx.load.start('warm-up', ctx.ids)
    await sleep(5_000)
    await ctx.load.stop()
    log(`idle foreground window (${options.idleSeconds} s)`)
    const idlePhase = await measure(ctx, 'idle', true, () => sleep(options.idleSeconds * 1000))
    const idle = idlePhase.foreground
    log(`  idle p50 ${idle?.p50Ms} ms, p99 ${idle?.p99Ms} ms`)
    log(
      `  slowest (ms into the window: ms): ${(idle?.slowest ?? []).map((r) => `${r.atMs}: ${r.ms}`).join(', ')}`
    )

    const full = await scale(ctx, options.rows, true)
    let hot: HotResult | null = null
    if (!options.skipHot) {
      log('HOT experiment: floor on two fresh copies (scan index vs fillfactor 70, no scan index)')
      hot = await hotExperiment(
        ctx.db,
        ctx.kekName,
        ctx.current,
        ctx.app.config.get<number>('rewrap.rotation.batchSize'),
        log
      )
    }
    full.push(await publishedVariant(ctx, options.rows))
    const floorFull = addRatios(full)
    const targets = evaluateTargets(full, small, idle, floorFull)

    const out: string[] = []
    if (small.length) {
      out.push(`\nSmall scale: ${options.rssRows.toLocaleString()} rows`, table(small))
    }
    out.push(`\nFull scale: ${options.rows.toLocaleString()} rows`, table(full))
    out.push(
      `* extrapolated from ${options.publishedRows.toLocaleString()} rows. ×floor: against the median floor pass of the same scale.`,
      `Idle foreground: p50 ${idle?.p50Ms} ms, p99 ${idle?.p99Ms} ms, ${idle?.failed} failed of ${idle?.sent} (${options.rate} req/s, ${options.concurrency} in flight at most).`,
      `Floor passes scramble the wraps of the rows they have passed until the return pass: their foreground failures are expected.`
    )
    if (hot) {
      out.push('\nHOT experiment (floor only, no foreground load):')
      for (const h of hot.passes) {
        out.push(
          `  ${h.table.padEnd(22)} pass ${h.pass}: ${h.rowsPerSecond.toLocaleString().padStart(8)} rows/s, ${String(h.walBytesPerRow).padStart(5)} WAL B/row, HOT ${h.hotShare === null ? '–' : `${Math.round(h.hotShare * 100)}%`}`
        )
      }
    }
    out.push('\nTargets:')
    for (const t of targets)
      out.push(
        `  [${t.pass === null ? 'INFO' : t.pass ? 'PASS' : 'FAIL'}] ${t.target}: ${t.measured}`
      )
    process.stdout.write(out.join('\n') + '\n')

    const file = writeJson(options.outDir, startedAt, {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      options,
      machine: machineInfo(pgVersion, pgSettings),
      database: { source: database.source, server: describeUrl(database.url) },
      rotationDefaults: ctx.app.config.get('rewrap.rotation'),
      seedingSeconds: seeding,
      memoryCheckpoints: checkpoints,
      idle,
      small,
      full,
      hot,
      targets,
    })
    log(`results written to ${file}`)
  } finally {
    if (load) await load.close().catch(() => {})
    for (const child of children.reverse()) await child.stop().catch(() => {})
    if (app) await app.terminate().catch(() => {})
    if (database) await database.cleanup().catch((error) => log(`cleanup failed: ${error.message}`))
  }
}
