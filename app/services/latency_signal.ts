/*
|--------------------------------------------------------------------------
| The foreground latency signal of the latency budget
|--------------------------------------------------------------------------
|
| The HTTP servers' request timings (`foreground_latencies`, written by
| request_latency_recorder.ts), as the latency pacer reads them: the rows
| past the last one seen, and the requests served before a run started.
|
*/
import db from '@adonisjs/lucid/services/db'
import { BACKGROUND_TAG } from '#services/foreground_detector'
import type { LatencySignal } from '#services/latency_pacer'

/** Reads `foreground_latencies` rows past the last one seen. */
export class DatabaseLatencySignal implements LatencySignal {
  #lastId: string | null = null

  /** New samples of every HTTP server sharing this database. */
  async read(): Promise<number[]> {
    if (this.#lastId === null) {
      const { rows } = await db.rawQuery(
        `${BACKGROUND_TAG} SELECT coalesce(max(id), 0)::text AS id FROM foreground_latencies`
      )
      this.#lastId = rows[0].id
      return []
    }
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT id::text AS id, samples FROM foreground_latencies
        WHERE id > ? ORDER BY id LIMIT 200`,
      [this.#lastId]
    )
    if (rows.length === 0) return []
    this.#lastId = rows[rows.length - 1].id
    return rows.flatMap((row: { samples: number[] }) => row.samples.map(Number))
  }

  /** The servers' timings of `ms` ending `endedMsAgo` ago, unless a paced run judged meanwhile. */
  async recent(ms: number, endedMsAgo: number): Promise<number[] | null> {
    const from = (ms + endedMsAgo) / 1000
    const to = endedMsAgo / 1000
    const { rows: busy } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT 1 FROM run_pacing
        WHERE judged_at > now() - make_interval(secs => ?) LIMIT 1`,
      [from]
    )
    if (busy.length > 0) return null
    const { rows } = await db.rawQuery(
      `${BACKGROUND_TAG} SELECT samples FROM foreground_latencies
        WHERE recorded_at > now() - make_interval(secs => ?)
          AND recorded_at <= now() - make_interval(secs => ?) ORDER BY id`,
      [from, to]
    )
    return rows.flatMap((row: { samples: number[] }) => row.samples.map(Number))
  }
}
