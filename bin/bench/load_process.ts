/*
|--------------------------------------------------------------------------
| Foreground load generator (child process)
|--------------------------------------------------------------------------
|
| GET /entries/:id with random ids at a fixed rate, at most `concurrency`
| requests in flight, loopback only. Runs in its own process so that the
| rotation's CPU work does not delay the timing of the responses and its
| memory is not counted in the benchmark process's RSS. Between `start`
| and `stop` messages (IPC) it records one window. Self-contained: Node's
| own type stripping runs it, no app imports.
|
*/
import http from 'node:http'
import { performance } from 'node:perf_hooks'
/** Settings of the generator. */
export interface LoadSettings {
  port: number
  /** Bearer token (memory only). */
  token: string
  rate: number
  concurrency: number
  /** A window stops by itself after this long. */
  maxWindowMs: number
  timeoutMs: number
}

/** Messages to the worker. */
export type LoadCommand =
  | { type: 'init'; settings: LoadSettings }
  | { type: 'start'; label: string; minId: number; maxId: number }
  | { type: 'stop' }
  | { type: 'exit' }

/** What one window measured. */
export interface LoadWindow {
  label: string
  durationMs: number
  sent: number
  ok: number
  failed: number
  /** Failures by status code (or `error` / `timeout`). */
  failures: Record<string, number>
  /** Ticks skipped because `concurrency` requests were already in flight. */
  skipped: number
  /** Latencies of the successful requests, ms, ascending. */
  latenciesMs: number[]
  /** The 10 slowest successful requests: when they were sent (ms into the window) and their latency. */
  slowest: Array<{ atMs: number; ms: number }>
  /** Every successful request's send time (ms into the window), in the order of `timeline`. */
  timeline: Array<[number, number]>
}

let data: LoadSettings
let agent: http.Agent

let window: LoadWindow | null = null
let startedAt = 0
let timer: NodeJS.Timeout | undefined
let inFlight = 0
let tick = 0
let finishing: (() => void) | null = null
let minId = 1
let maxId = 1

function randomId() {
  return minId + Math.floor(Math.random() * (maxId - minId + 1))
}

function fail(current: LoadWindow, reason: string) {
  current.failed++
  current.failures[reason] = (current.failures[reason] ?? 0) + 1
}

function send(current: LoadWindow) {
  inFlight++
  current.sent++
  const began = performance.now()
  let settled = false
  const settle = (reason: string | null) => {
    if (settled) return
    settled = true
    inFlight--
    if (reason === null) {
      current.ok++
      current.latenciesMs.push(performance.now() - began)
      current.timeline.push([began - startedAt, performance.now() - began])
    } else {
      fail(current, reason)
    }
    if (inFlight === 0 && finishing) finishing()
  }
  const request = http.request(
    {
      host: '127.0.0.1',
      port: data.port,
      path: `/entries/${randomId()}`,
      method: 'GET',
      agent,
      headers: { authorization: `Bearer ${data.token}`, accept: 'application/json' },
      timeout: data.timeoutMs,
    },
    (response) => {
      response.on('data', () => {})
      response.on('end', () =>
        settle(response.statusCode === 200 ? null : String(response.statusCode))
      )
      response.on('error', (error: NodeJS.ErrnoException) =>
        settle(`error:${error.code ?? 'unknown'}`)
      )
    }
  )
  request.on('timeout', () => {
    request.destroy()
    settle('timeout')
  })
  request.on('error', (error: NodeJS.ErrnoException) => settle(`error:${error.code ?? 'unknown'}`))
  request.end()
}

function schedule() {
  const current = window
  if (!current) return
  const elapsed = performance.now() - startedAt
  if (elapsed > data.maxWindowMs) {
    void stop()
    return
  }
  // Fixed schedule: tick i is due at i / rate seconds (no drift from timer jitter).
  const due = Math.floor((elapsed * data.rate) / 1000)
  while (tick <= due) {
    tick++
    if (inFlight < data.concurrency) send(current)
    else current.skipped++
  }
  const next = (tick * 1000) / data.rate - (performance.now() - startedAt)
  timer = setTimeout(schedule, Math.max(0, next))
}

async function stop() {
  const current = window
  if (!current) return
  clearTimeout(timer)
  window = null
  current.durationMs = performance.now() - startedAt
  if (inFlight > 0) await new Promise<void>((resolve) => (finishing = resolve))
  finishing = null
  current.latenciesMs.sort((a, b) => a - b)
  current.slowest = [...current.timeline]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([atMs, ms]) => ({ atMs: Math.round(atMs), ms: Math.round(ms * 10) / 10 }))
  current.timeline = []
  process.send!(current)
}

process.on('message', (command: LoadCommand) => {
  if (command.type === 'init') {
    data = command.settings
    // Idle keep-alive sockets are dropped after 2 s, before the server's own 5 s keep-alive
    // timeout closes them: reusing a socket the server is closing fails with ECONNRESET, a
    // client-side race that is not a failure of the app.
    agent = new http.Agent({
      keepAlive: true,
      maxSockets: data.concurrency,
      timeout: 2_000,
      scheduling: 'lifo',
    })
  } else if (command.type === 'start') {
    minId = command.minId
    maxId = command.maxId
    window = {
      label: command.label,
      durationMs: 0,
      sent: 0,
      ok: 0,
      failed: 0,
      failures: {},
      skipped: 0,
      latenciesMs: [],
      slowest: [],
      timeline: [],
    }
    startedAt = performance.now()
    tick = 0
    schedule()
  } else if (command.type === 'stop') {
    void stop()
  } else {
    agent?.destroy()
    process.disconnect()
  }
})
process.on('disconnect', () => process.exit(0))
