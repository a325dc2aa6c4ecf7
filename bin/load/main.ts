/*
|--------------------------------------------------------------------------
| The load run (`npm run load`)
|--------------------------------------------------------------------------
|
| 1. The bench's database, environment, migrations and in-process boot
|    (bin/bench/boot.ts, database.ts); `--rows` rows seeded with
|    `demo:seed` under a fresh KEK (bin/bench/seed.ts); the HTTP server as
|    a child on 127.0.0.1 (bin/bench/foreground.ts); a token with
|    entries:read and entries:write.
| 2. Warm-up (not measured), then the idle phase: the mix alone.
| 3. The rotation phase: `node ace rotate:kek <kek> --json` as a child
|    (default throttle unless --rotate-args) and the same mix until it
|    ends (at most --max-seconds).
| 4. Checks: the run completed, every row of the KEK at its target;
|    figures printed and written as JSON. Exit 1 when a request of the
|    rotation phase failed or the rotation did not complete.
|
*/
import 'reflect-metadata'
import { setTimeout as sleep } from 'node:timers/promises'
import { bootApp, migrate, useBenchEnvironment } from '../bench/boot.js'
import { describeUrl, prepareDatabase } from '../bench/database.js'
import { startServer } from '../bench/foreground.js'
import { log } from '../bench/log.js'
import { spawnAce } from '../bench/processes.js'
import { writeJson } from '../bench/report.js'
import { seed } from '../bench/seed.js'
import { tearDown, type Held } from '../bench/setup.js'
import { startPhase, type LoadTarget, type PhaseStats } from './cannon.js'
import { parseLoadOptions, type LoadOptions } from './options.js'
import { printLoadSummary } from './summary.js'

/** What the rotate:kek child reported. */
interface RotationOutcome {
  status: string
  rewrapped: number
  seconds: number
  /** True when --max-seconds stopped it. */
  stopped: boolean
}

async function rotationPhase(
  target: LoadTarget,
  options: LoadOptions,
  kek: string
): Promise<{ stats: PhaseStats; rotation: RotationOutcome }> {
  const phase = startPhase(target, 'rotation', options.maxSeconds, options.seed + 2)
  const started = performance.now()
  const rotate = spawnAce(['rotate:kek', kek, '--json', ...options.rotateArgs])
  let stopped = false
  const limit = setTimeout(() => {
    stopped = true
    rotate.child.kill('SIGTERM')
  }, options.maxSeconds * 1000)
  let rotation: RotationOutcome
  try {
    const result = await rotate.done
    const run = JSON.parse(result.stdout.trim().split('\n').pop()!)
    rotation = {
      status: run.status ?? run.run?.status,
      rewrapped: run.rewrapped ?? run.run?.rewrapped,
      seconds: (performance.now() - started) / 1000,
      stopped,
    }
  } catch (error) {
    log(`rotate:kek failed: ${(error as Error).message}`)
    rotation = {
      status: 'failed',
      rewrapped: 0,
      seconds: (performance.now() - started) / 1000,
      stopped,
    }
  } finally {
    clearTimeout(limit)
    phase.stop()
  }
  return { stats: await phase.done, rotation }
}

/** Runs the load harness with command-line `argv`. */
export async function main(argv: string[]) {
  const options = parseLoadOptions(argv)
  const startedAt = new Date()
  const held: Held = { children: [] }
  let failed = true
  try {
    const database = (held.database = await prepareDatabase())
    log(`database ${describeUrl(database.url)} (${database.source})`)
    useBenchEnvironment(database.url)
    await migrate()
    const app = (held.app = await bootApp())
    const { default: db } = await import('@adonisjs/lucid/services/db')
    const kekName = `load_${startedAt.getTime()}`
    const target = { db, kekName, options, current: 1, ids: { minId: 1, maxId: 1 } }
    log(`seeding ${options.rows.toLocaleString()} rows under ${kekName}`)
    await seed(target, options.rows)
    const port = await startServer(held.children)
    const { TokenService } = await import('#services/token_service')
    const tokens = await app.container.make(TokenService)
    const { token } = await tokens.create({
      name: 'load',
      abilities: ['entries:read', 'entries:write'],
    })
    const load: LoadTarget = {
      url: `http://127.0.0.1:${port}`,
      token,
      rate: options.rate,
      connections: options.connections,
      kek: kekName,
      ids: target.ids,
      shares: options.mix,
    }
    log(
      `HTTP server on 127.0.0.1:${port}; mix ${options.mix.reads}/${options.mix.writes}/${options.mix.updates} (reads/writes/updates) at ${options.rate} req/s, ${options.connections} connections`
    )
    if (options.warmupSeconds > 0) {
      log(`warm-up (${options.warmupSeconds} s, not measured)`)
      await startPhase(load, 'warm-up', options.warmupSeconds, options.seed).done
    }
    await db.rawQuery('VACUUM (ANALYZE) vault_entries')
    await sleep(500)
    log(`idle phase (${options.idleSeconds} s)`)
    const idle = await startPhase(load, 'idle', options.idleSeconds, options.seed + 1).done
    await db.rawQuery('VACUUM (ANALYZE) vault_entries')
    log(`rotation phase: rotate:kek ${kekName} ${options.rotateArgs.join(' ')}`.trim())
    const { stats: during, rotation } = await rotationPhase(load, options, kekName)
    const { rows } = await db.rawQuery(
      `SELECT count(*)::bigint AS total,
              count(*) FILTER (WHERE kek_version < (SELECT max(kek_version) FROM vault_entries WHERE kek_name = ?))::bigint AS behind
         FROM vault_entries WHERE kek_name = ?`,
      [kekName, kekName]
    )
    const check = { totalRows: Number(rows[0].total), rowsBehind: Number(rows[0].behind) }
    printLoadSummary(options, idle, during, rotation, check)
    const file = writeJson(options.outDir, startedAt, {
      kind: 'load',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      options,
      database: { source: database.source, server: describeUrl(database.url) },
      idle,
      rotation: { ...rotation, phase: during },
      check,
    })
    log(`results written to ${file}`)
    failed =
      during.failed > 0 ||
      rotation.status !== 'completed' ||
      check.rowsBehind > 0 ||
      idle.failed > 0
  } finally {
    await tearDown(held)
  }
  if (failed) process.exitCode = 1
}
