/*
|--------------------------------------------------------------------------
| One rotation shared by many workers (`--workers 1,2,4`)
|--------------------------------------------------------------------------
|
| One table of `--workers-rows` rows under one KEK, seeded once (not timed)
| with the local driver, whose keyrings `kms:serve` serves (same kms_keys
| table and root key). Per latency L (`--workers-latency`): `node ace
| kms:serve --latency-ms L` as a child (Vault transit, L ms added to every
| answer); then per worker count N, after the table is settled (VACUUM,
| CHECKPOINT): `node ace rotate:kek <kek> --workers N --nice-ratio 0 --json`
| as a child with KMS_DRIVER=vault pointed at it, to completion — Step A
| (a new version) and every row rewrapped, so every row starts from the
| same table. With `--workers-reference` first the in-process
| `rotate:kek` (no --workers) at that latency. Sampled through each run:
| workers_sampler.ts. Full speed, no foreground load.
|
*/
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { freePort } from '../embedded_postgres.js'
import type { Context } from './context.js'
import { log } from './log.js'
import { settle } from './phase.js'
import { answers, spawnAce, startChild, type Child } from './processes.js'
import { seed } from './seed.js'
import { round } from './sampler.js'
import type { WorkersResult, WorkersRow } from './workers_report.js'
import { WorkersSampler, type WorkersSample } from './workers_sampler.js'

/** The last line of `rotate:kek --json`. */
interface CliRun {
  id: number
  status: string
  rewrapped: number
  targetVersion: number
  startedAt: string
  finishedAt: string
}

/** kms:serve with a latency, and the environment of a rotate:kek child using it. */
async function startTransit(
  latencyMs: number,
  cpuNice: number
): Promise<{ child: Child; env: NodeJS.ProcessEnv }> {
  const port = await freePort()
  const token = randomBytes(24).toString('base64url')
  const child = await startChild(
    `kms-serve-workers-${latencyMs}`,
    ['ace.js', 'kms:serve', '--port', String(port), '--latency-ms', String(latencyMs)],
    { KMS_SERVE_TOKEN: token },
    () => answers(`http://127.0.0.1:${port}/v1/sys/health`)
  )
  const env = {
    KMS_DRIVER: 'vault',
    VAULT_ADDR: `http://127.0.0.1:${port}`,
    VAULT_TOKEN: token,
    VAULT_ALLOW_INSECURE_HTTP: 'true',
    REWRAP_CPU_NICE: String(cpuNice),
  }
  return { child, env }
}

async function lastRunId(ctx: Context, kek: string): Promise<number> {
  const { rows } = await ctx.db.rawQuery(
    `SELECT coalesce(max(id), 0)::bigint AS id FROM key_rotations WHERE kek_name = ?`,
    [kek]
  )
  return Number(rows[0].id)
}

async function chunkCount(ctx: Context, runId: number): Promise<number> {
  const { rows } = await ctx.db.rawQuery(
    `SELECT count(*)::int AS n FROM rewrap_chunks WHERE run_kind = 'rotation' AND run_id = ?`,
    [runId]
  )
  return rows[0].n
}

/** CPU ms per row over the window, null when unknown. */
function perRow(from: number | null, to: number | null, rows: number) {
  return from === null || to === null || rows <= 0 ? null : round(((to - from) * 1000) / rows, 3)
}

/** One row: settle, rotate:kek as a child to completion, sampled. */
async function measureRow(
  ctx: Context,
  kek: string,
  rows: number,
  transit: { child: Child; env: NodeJS.ProcessEnv },
  latencyMs: number,
  workers: number | null
): Promise<WorkersRow> {
  await settle(ctx)
  const args = ['rotate:kek', kek, '--nice-ratio', '0', '--json']
  if (workers !== null) args.push('--workers', String(workers))
  log(`  ${workers === null ? 'in-process rotate:kek' : `--workers ${workers}`}, ${latencyMs} ms`)
  const afterRunId = await lastRunId(ctx, kek)
  let pid: number | undefined
  const sampler = new WorkersSampler(
    ctx.db,
    kek,
    afterRunId,
    () => pid,
    () => transit.child.cpuSeconds()
  )
  await sampler.start()
  let stdout: string
  try {
    const started = spawnAce(args, transit.env, { entry: ctx.cliEntry })
    pid = started.child.pid
    const done = await started.done
    stdout = done.stdout
  } finally {
    await sampler.stop()
  }
  const run = JSON.parse(stdout.trim().split('\n').pop()!) as CliRun
  if (run.status !== 'completed' || run.rewrapped !== rows) {
    throw new Error(`rotate:kek ended ${run.status} with ${run.rewrapped}/${rows} rows rewrapped`)
  }
  const [a, b] = sampler.window(rows, workers ?? 0)
  const windowRows = b.rewrapped - a.rewrapped
  const windowSeconds = (b.atMs - a.atMs) / 1000
  const runSeconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000
  const busy = (x: WorkersSample, y: WorkersSample) =>
    y.machineTotalTicks > x.machineTotalTicks
      ? (y.machineBusyTicks - x.machineBusyTicks) / (y.machineTotalTicks - x.machineTotalTicks)
      : null
  const machineBusy = busy(a, b)
  const row: WorkersRow = {
    latencyMs,
    workers,
    rows,
    chunks: workers === null ? null : await chunkCount(ctx, run.id),
    runSeconds: round(runSeconds, 2),
    runRowsPerSecond: Math.round(rows / runSeconds),
    windowRows,
    windowFrom: round(a.rewrapped / rows, 3),
    windowSeconds: round(windowSeconds, 2),
    rowsPerSecond: Math.round(windowRows / windowSeconds),
    cpuMsPerRow: {
      rotate: perRow(a.rotateCpu, b.rotateCpu, windowRows),
      kms: perRow(a.kmsCpu, b.kmsCpu, windowRows),
      pgBackends: perRow(a.pgBackendsCpu, b.pgBackendsCpu, windowRows),
      pgAux: perRow(a.pgAuxCpu, b.pgAuxCpu, windowRows),
    },
    machineBusyCores: machineBusy === null ? null : round(machineBusy * availableParallelism(), 2),
  }
  log(
    `    ${row.rowsPerSecond.toLocaleString()} rows/s (window from ${Math.round(row.windowFrom * 100)} % to 90 %), ${row.runRowsPerSecond.toLocaleString()} rows/s over the run; CPU ms/row: rotate+workers ${row.cpuMsPerRow.rotate}, kms ${row.cpuMsPerRow.kms}, pg ${row.cpuMsPerRow.pgBackends}; machine ${row.machineBusyCores} cores busy`
  )
  return row
}

/**
 * Every workers row: per `--workers-latency`, the reference (optional)
 * then each `--workers` count, on one seeded table.
 */
export async function workersVariants(ctx: Context): Promise<WorkersResult> {
  const { workers, workersLatencies, workersRows, workersReference } = ctx.options
  const kek = `bench_workers_${Date.now()}`
  log(`workers: seeding ${workersRows.toLocaleString()} rows under ${kek} (not timed)`)
  const target = { ...ctx, kekName: kek, ids: { ...ctx.ids } }
  await seed(target, workersRows)
  const rows: WorkersRow[] = []
  for (const latencyMs of workersLatencies) {
    log(`workers: kms:serve (vault transit) with ${latencyMs} ms per answer`)
    const transit = await startTransit(latencyMs, ctx.options.workersCpuNice)
    try {
      if (workersReference)
        rows.push(await measureRow(ctx, kek, workersRows, transit, latencyMs, null))
      for (const n of workers) {
        rows.push(await measureRow(ctx, kek, workersRows, transit, latencyMs, n))
      }
    } finally {
      await transit.child.stop()
    }
  }
  const config = ctx.app.config.get<{ batchSize: number }>('rewrap.rotation')
  return {
    rows,
    cores: availableParallelism(),
    batchSize: config.batchSize,
    cpuNice: ctx.options.workersCpuNice,
  }
}
