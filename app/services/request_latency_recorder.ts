/*
|--------------------------------------------------------------------------
| Request latency recorder (the foreground signal of the latency budget)
|--------------------------------------------------------------------------
|
| The HTTP server keeps the duration of every request it serves (the
| request timing middleware) and, once per `flushMs` with traffic, writes
| them as one row of `foreground_latencies` — the app's own request
| timings, where a rotation process on any host that shares the database
| reads them (app/services/latency_pacer.ts). One INSERT per second per
| server, tagged as background work (not counted by the foreground
| detector); rows older than `keepMs` are pruned by the same statement.
| At most `maxSamples` durations per flush (a uniform reservoir sample
| beyond that), so a traffic spike costs no more.
|
*/
import { hostname } from 'node:os'
import db from '@adonisjs/lucid/services/db'
import { BACKGROUND_TAG } from '#services/foreground_detector'

/** Settings of the recorder (config/rewrap.ts `rotation.latencyBudget.recorder`). */
export interface RecorderOptions {
  /** One row per this many ms (with traffic). */
  flushMs: number
  /** Durations kept per flush at most. */
  maxSamples: number
  /** Rows older than this are deleted, ms. */
  keepMs: number
}

/** Writes one flush (injectable for tests). */
export type LatencyWriter = (source: string, samplesMs: number[], keepMs: number) => Promise<void>

/** Inserts the flush and prunes old rows, in one statement. */
export const writeLatencies: LatencyWriter = async (source, samplesMs, keepMs) => {
  await db.rawQuery(
    `${BACKGROUND_TAG} WITH pruned AS (
       DELETE FROM foreground_latencies WHERE recorded_at < now() - make_interval(secs => ?)
     )
     INSERT INTO foreground_latencies (source, samples) VALUES (?, ?::real[])`,
    [keepMs / 1000, source, `{${samplesMs.map((ms) => ms.toFixed(3)).join(',')}}`]
  )
}

/**
 * Collects request durations and writes them out periodically. One per
 * HTTP server process (a container singleton).
 */
export class RequestLatencyRecorder {
  #samples: number[] = []
  #seen = 0
  #timer: NodeJS.Timeout | null = null
  #flushing: Promise<void> | null = null
  readonly source = `${hostname()}:${process.pid}`

  constructor(
    private options: RecorderOptions,
    private write: LatencyWriter = writeLatencies,
    private random: () => number = Math.random
  ) {}

  /** Records one request's duration, ms. */
  record(ms: number) {
    if (!Number.isFinite(ms) || ms < 0) return
    this.#seen++
    if (this.#samples.length < this.options.maxSamples) {
      this.#samples.push(ms)
      return
    }
    // Reservoir sampling: every request of the window equally likely to be kept.
    const slot = Math.floor(this.random() * this.#seen)
    if (slot < this.options.maxSamples) this.#samples[slot] = ms
  }

  /** Writes what was recorded since the last flush (nothing when idle); never throws. */
  async flush() {
    if (this.#samples.length === 0) return
    const samples = this.#samples
    this.#samples = []
    this.#seen = 0
    try {
      await this.write(this.source, samples, this.options.keepMs)
    } catch {
      // The pacing loses one window; the database's own errors show elsewhere.
    }
  }

  /** Flushes every `flushMs` until stopped. */
  start() {
    if (this.#timer) return
    this.#timer = setInterval(() => {
      if (!this.#flushing) this.#flushing = this.flush().finally(() => (this.#flushing = null))
    }, this.options.flushMs)
    this.#timer.unref()
  }

  /** Stops the timer and waits for a flush in flight. */
  async stop() {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    await this.#flushing
  }
}
