/*
|--------------------------------------------------------------------------
| Foreground load: controller of the worker thread
|--------------------------------------------------------------------------
*/
import { fork, type ChildProcess } from 'node:child_process'
import type { LoadCommand, LoadSettings, LoadWindow } from './load_process.js'
import { processCpuSeconds } from './processes.js'
import { round } from './sampler.js'

/** Summary of one foreground window. */
export interface ForegroundStats {
  label: string
  seconds: number
  sent: number
  ok: number
  failed: number
  failures: Record<string, number>
  /** Ticks not sent because the concurrency limit was reached. */
  skipped: number
  achievedRps: number
  p50Ms: number | null
  p90Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** The 10 slowest requests: ms into the window when sent, and latency. */
  slowest: Array<{ atMs: number; ms: number }>
}

/**
 * The q-quantile (0–1) of ascending values (nearest rank).
 */
export function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

/**
 * Drives the load generator process: one window at a time.
 */
export class ForegroundLoad {
  #child: ChildProcess
  #pending: Promise<LoadWindow> | null = null

  /** For CPU accounting with the other children. */
  readonly name = 'load'

  constructor(settings: LoadSettings) {
    // Node's own type stripping runs the generator; no loader flags needed.
    this.#child = fork(new URL('./load_process.ts', import.meta.url), [], {
      execArgv: [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    // The token travels over the IPC channel only (not argv, not env).
    this.#send({ type: 'init', settings })
  }

  /** CPU seconds the generator used so far. */
  cpuSeconds() {
    return this.#child.pid ? processCpuSeconds(this.#child.pid) : null
  }

  #send(command: LoadCommand) {
    this.#child.send(command)
  }

  /**
   * Starts a window (the load begins at once).
   */
  start(label: string, ids: { minId: number; maxId: number }) {
    if (this.#pending) throw new Error('a foreground window is already running')
    this.#pending = new Promise((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`the load generator exited with ${code}`))
      this.#child.once('exit', onExit)
      this.#child.once('message', (message) => {
        this.#child.off('exit', onExit)
        resolve(message as LoadWindow)
      })
    })
    this.#send({ type: 'start', label, ...ids })
  }

  /**
   * Stops the window (waits for the requests in flight) and summarises it.
   */
  async stop(): Promise<ForegroundStats> {
    const pending = this.#pending
    if (!pending) throw new Error('no foreground window is running')
    this.#send({ type: 'stop' })
    const window = await pending
    this.#pending = null
    const lat = window.latenciesMs
    const seconds = window.durationMs / 1000
    const ms = (value: number | null) => (value === null ? null : round(value, 1))
    return {
      label: window.label,
      seconds: round(seconds, 1),
      sent: window.sent,
      ok: window.ok,
      failed: window.failed,
      failures: window.failures,
      skipped: window.skipped,
      achievedRps: round(window.sent / Math.max(seconds, 0.001), 1),
      p50Ms: ms(quantile(lat, 0.5)),
      p90Ms: ms(quantile(lat, 0.9)),
      p99Ms: ms(quantile(lat, 0.99)),
      maxMs: ms(lat.length ? lat[lat.length - 1] : null),
      slowest: window.slowest,
    }
  }

  /**
   * Ends the generator.
   */
  async close() {
    if (this.#child.exitCode !== null) return
    const exited = new Promise((resolve) => this.#child.once('exit', resolve))
    if (this.#child.connected) this.#send({ type: 'exit' })
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}
