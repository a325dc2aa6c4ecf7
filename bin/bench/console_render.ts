/*
|--------------------------------------------------------------------------
| GET /console server time with 20 KEKs and 100 runs
|--------------------------------------------------------------------------
|
| 20 KEKs on the local driver, 40 rows each, each rotated 5 times through
| KeyRotationService (100 real runs, their audit records), a token signed
| in through the form; then GET /console: the first request (readiness
| probe and audit verification not cached yet), then --requests more.
| Times are measured around each request on the loopback interface.
|
*/
import 'reflect-metadata'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { bootApp, migrate, useBenchEnvironment } from './boot.js'
import { prepareDatabase, type BenchDatabase } from './database.js'
import { log } from './log.js'

const KEKS = 20
const ROTATIONS_PER_KEK = 5
const ROWS_PER_KEK = 40

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] }
}

/** Cookie header of the response's Set-Cookie lines, merged into `jar`. */
function keepCookies(jar: Map<string, string>, response: Response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';')
    const index = pair.indexOf('=')
    jar.set(pair.slice(0, index), pair.slice(index + 1))
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
}

/**
 * Runs the benchmark (`--requests N`: warm requests, default 30).
 */
export async function main(argv: string[]) {
  const index = argv.indexOf('--requests')
  const requests = index >= 0 ? Number(argv[index + 1]) : 30
  let database: BenchDatabase | undefined
  let app: Awaited<ReturnType<typeof bootApp>> | undefined
  const http = createServer()
  try {
    database = await prepareDatabase()
    useBenchEnvironment(database.url)
    await migrate()
    app = await bootApp()
    const { KmsManager } = await import('#kms/kms_manager')
    const { EntryService } = await import('#services/entry_service')
    const { KeyRotationService } = await import('#services/key_rotation_service')
    const { TokenService } = await import('#services/token_service')
    const kms = await app.container.make(KmsManager)
    const entries = await app.container.make(EntryService)
    const rotations = await app.container.make(KeyRotationService)
    const started = performance.now()
    for (let k = 0; k < KEKS; k++) {
      const name = `console-bench-${String(k).padStart(2, '0')}`
      const driver = await kms.forKek(name)
      await driver.createKey(name)
      await entries.seed(name, { rows: ROWS_PER_KEK, batchSize: 500, payload: (i) => ({ i }) })
      for (let r = 0; r < ROTATIONS_PER_KEK; r++) await rotations.rotate(name, { sleepMs: 0 })
    }
    log(
      `${KEKS} KEKs, ${KEKS * ROTATIONS_PER_KEK} runs in ${Math.round(performance.now() - started)} ms`
    )

    const server = await app.container.make('server')
    await server.boot()
    http.on('request', (req, res) => server.handle(req, res))
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`

    const tokens = await app.container.make(TokenService)
    const created = await tokens.create({ name: 'console-bench', abilities: ['rotation:read'] })
    const jar = new Map<string, string>()
    const form = await fetch(`${base}/console/sign-in`)
    let cookie = keepCookies(jar, form)
    const csrf = /name='_csrf' value='([^']+)'/.exec(await form.text())?.[1] ?? ''
    const signIn = await fetch(`${base}/console/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ token: created.token, _csrf: csrf }),
    })
    cookie = keepCookies(jar, signIn)
    if (signIn.status !== 303) throw new Error(`sign-in answered ${signIn.status}`)

    // CPU time of this process (app + client) per request: a figure the machine's load does not inflate.
    const cpu: number[] = []
    const get = async () => {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      const response = await fetch(`${base}/console`, { headers: { cookie }, redirect: 'manual' })
      const body = await response.text()
      const ms = performance.now() - t0
      const used = process.cpuUsage(c0)
      cpu.push((used.user + used.system) / 1000)
      if (response.status !== 200 || !body.includes('console-bench-19')) {
        throw new Error(`GET /console answered ${response.status}`)
      }
      cookie = keepCookies(jar, response)
      return ms
    }
    const first = await get()
    const warm: number[] = []
    for (let i = 0; i < requests; i++) warm.push(await get())
    const s = stats(warm)
    const c = stats(cpu.slice(1))
    // Where the time goes: each source of the page, called directly (warm).
    const { RotationStatusService } = await import('#services/rotation_status_service')
    const { HealthService } = await import('#services/health_service')
    const { AuditExportService } = await import('#services/audit_export_service')
    const { ConsoleService } = await import('#services/console_service')
    const { default: edge } = await import('edge.js')
    const consoleService = await app.container.make(ConsoleService)
    const statusService = await app.container.make(RotationStatusService)
    const health = await app.container.make(HealthService)
    const audits = await app.container.make(AuditExportService)
    const page = await consoleService.page()
    const parts = {
      'ConsoleService.page() (all sources, caches warm)': () => consoleService.page(),
      'Edge render of the page': () =>
        edge.render('console/index', {
          page,
          viewer: { tokenId: '1', name: 'bench', abilities: ['rotation:read'] },
          canAdmin: false,
          notice: null,
          humanSeconds: (n: number) => String(n),
          pollMs: 1000,
          csrfField: () => '',
        }),
      'rotation status report': () => statusService.status(),
      'run list (20)': () => rotations.list({ limit: 20 }),
      'readiness probe (uncached)': () => health.probe(),
      'audit verification (uncached)': () => audits.verify(),
    }
    for (const [name, part] of Object.entries(parts)) {
      const t0 = performance.now()
      await part()
      log(`  ${name}: ${(performance.now() - t0).toFixed(1)} ms`)
    }
    log(`GET /console first (cold caches): ${first.toFixed(1)} ms, CPU ${cpu[0].toFixed(1)} ms`)
    log(
      `GET /console warm x${requests}: median ${s.median.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms, max ${s.max.toFixed(1)} ms`
    )
    log(
      `  CPU per warm request: median ${c.median.toFixed(1)} ms, p95 ${c.p95.toFixed(1)} ms, max ${c.max.toFixed(1)} ms`
    )
    const os = await import('node:os')
    log(
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${os.cpus().length} CPUs`
    )
  } finally {
    http.close()
    if (app) await app.terminate().catch(() => {})
    if (database) await database.cleanup().catch(() => {})
  }
}
