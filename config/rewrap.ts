/*
|--------------------------------------------------------------------------
| Rewrap settings
|--------------------------------------------------------------------------
*/

import env from '#start/env'
import { defineConfig } from '#app/rewrap_config'

export type { KekPolicy, ManagedKekConfig, RewrapConfig } from '#app/rewrap_config'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/**
 * Validated when the app boots: a bad value stops it with E_CONFIG_INVALID
 * naming the key (app/rewrap_config.ts).
 */
const rewrapConfig = defineConfig({
  /**
   * DEK cache on the entry read path: at most `maxEntries` unwrapped DEKs,
   * each for at most `ttlMs`. Keyed by id and wrapped DEK, so a row that was
   * rewrapped or rewritten never serves a stale wrap.
   */
  dekCache: {
    maxEntries: 10_000,
    ttlMs: 5 * 60_000,
    /**
     * Revocation across processes (app/services/dek_cache_invalidation.ts):
     * the HTTP server LISTENs for kek:retire / kek:trim / dek-cache:flush
     * notices and empties its cache; while that connection is down the cache
     * is suspended. A silently dead connection is noticed within
     * `heartbeatMs + heartbeatTimeoutMs`.
     */
    invalidation: {
      heartbeatMs: 5_000,
      heartbeatTimeoutMs: 2_000,
      reconnectMinMs: 100,
      reconnectMaxMs: 5_000,
    },
  },

  /**
   * GET /health/ready: the probe (database, KMS drivers, a wrap/rewrap/unwrap
   * round trip per KEK) runs at most once per `cacheMs`; concurrent callers
   * share the probe in flight.
   */
  health: {
    cacheMs: 5_000,
  },

  /**
   * The operator console (GET /console): how often its page polls
   * /console/live for a running run's progress.
   */
  console: {
    pollMs: 1_000,
  },

  /**
   * Distributed runs (`rotate:kek --workers N | --distributed`, `rewrap:worker`).
   */
  distributed: {
    /**
     * A chunk's lease: a worker that has not committed a batch for this long
     * loses its chunk to another worker (its next commit is fenced out). Also
     * the job engine's stalled threshold (config/queue.ts).
     */
    leaseMs: env.get('REWRAP_WORKER_LEASE_MS') ?? 30_000,
    /** Target rows per chunk (chunks are cut at id percentiles of each stale version). */
    chunkRows: 20_000,
  },

  /**
   * Rewrap loop defaults (each overridable per run with rotate:kek flags).
   */
  rotation: {
    /** Rows per batch: one SELECT, one KMS rewrap call (chunked by the driver), one UPDATE. */
    batchSize: 1000,
    /** Sleep after every batch, ms (`--sleep-ms`). */
    sleepMs: 0,
    /** Rows/s ceiling, 0 = none (`--max-rate`). */
    maxRate: 0,
    /**
     * How the loop yields while other sessions use the database (with
     * nobody else on it, it runs at full speed either way):
     * - `'latency-budget'`: it works as much as the foreground's request
     *   latency allows (`latencyBudget` below; `--latency-budget <ratio>`);
     * - `'nice-ratio'`: a fixed duty, `niceRatio`. An explicit
     *   `--nice-ratio` always means this.
     */
    pacing: 'latency-budget' as 'latency-budget' | 'nice-ratio',
    /**
     * The nice ratio (`--nice-ratio`): while paced, sleep this many times as
     * long as each batch took, so the loop keeps at most 1 / (1 + niceRatio)
     * of the time. Under the latency budget: its starting duty. 0 = always
     * full speed.
     */
    niceRatio: 4,
    /**
     * The latency budget (app/services/latency_pacer.ts): the HTTP servers
     * record their request durations (`recorder`) in the database; the loop
     * judges each `windowMs` of them against the idle baseline (measured
     * while it rests, `baselineMs` long, every `rebaselineMs`, and again
     * after 6 windows held at `minDuty`): the budget is p99 ≤ `ratio` × the
     * baseline, i.e. at most 1 % of requests slower than that, counted over
     * the last 6 windows against a set-point of 80 % of that share; under it
     * → duty + up to `increase` (scaled by the headroom; longer batches,
     * toward `batchSize`), past it → duty × `decrease`, within [minDuty, 1].
     */
    latencyBudget: {
      ratio: 1.2,
      minDuty: 0.05,
      increase: 0.1,
      decrease: 0.5,
      windowMs: 5_000,
      minSamples: 20,
      pollMs: 500,
      baselineMs: 20_000,
      rebaselineMs: 10 * 60_000,
      /** Each HTTP server: one row of durations per `flushMs` with traffic, at most `maxSamples`. */
      recorder: { flushMs: 500, maxSamples: 2_000, keepMs: 2 * 60_000 },
    },
    /**
     * Rows per batch while paced: shorter bursts of database work between the
     * sleeps (100: the foreground p99 of docs/benchmarks.md; 250 made it 1.2–1.8×).
     */
    pacedBatchSize: 100,
    /** How "other sessions use the database" is sampled (pg_stat_activity). */
    foreground: {
      /** At most one sample per this many ms. */
      intervalMs: 500,
      /** A session counts when it ran a statement within this many ms. */
      windowMs: 1000,
    },
    /**
     * OS scheduling priority (nice, 0 to 19) taken by processes that only run
     * background work (`rotate:kek`, `reencrypt`, `scheduler:run`), so the
     * app's requests on the same host get the CPU first; null = unchanged.
     * Not applied to API-started runs (they share the HTTP server's process).
     * REWRAP_CPU_NICE sets it (the bench's workers rows run at 0: on a machine
     * shared with other work, nice 19 measures the other work).
     */
    cpuNice: (env.get('REWRAP_CPU_NICE') ?? 19) as number | null,
    /**
     * Also re-nice such a process's own Postgres backends to `cpuNice` when
     * the database server runs on this host (embedded Postgres, a local
     * server; needs the same OS user or CAP_SYS_NICE). Each pid is checked
     * to be the server end of the process's own TCP connection first.
     */
    niceLocalBackends: true,
    /** A KMS outage longer than this pauses the run as `failed` (resumable). */
    kmsOutageMs: 5 * 60_000,
    /**
     * A database outage (restart, failover, a cut connection; the run's lock
     * goes with its session) is ridden through for this long: the run waits
     * for the database, takes its lock back and continues from the committed
     * cursor. Longer, it stops with E_DATABASE_UNAVAILABLE (resumable).
     */
    databaseOutageMs: env.get('REWRAP_DATABASE_OUTAGE_MS') ?? 2 * 60_000,
    /** Extra passes to catch rows left stale by writes racing the scan. */
    maxPasses: 3,
    /** Rows/s assumed by --dry-run estimates when no throttle bounds them. */
    estimateRowsPerSecond: 20_000,
  },

  /**
   * Key lifecycle (NIST SP 800-57 style): active → rotated (every
   * cryptoperiod, by the scheduler) → retired (`kek:retire`, after the soak
   * period; reversible with `kek:unretire`) → trimmed (`kek:trim`, after the
   * retention period; permanent). Ages come from the KMS's own version
   * creation times, never from when a task fired.
   */
  lifecycle: {
    /** Periods of a managed KEK that does not set its own. */
    defaults: {
      /** 90 days: the scheduler rotates once the latest version is this old. */
      cryptoperiodMs: 90 * DAY,
      /** 24 h: retire old versions only once the latest version is this old. */
      soakMs: 24 * HOUR,
      /** 30 days: trim retired versions only this long after retiring them. */
      retentionMs: 30 * DAY,
    },
    /**
     * The KEKs the scheduler looks after, e.g.
     * `{ name: 'orders', cryptoperiodMs: 30 * DAY }` (unset periods take
     * `defaults`). Plus the names of REWRAP_MANAGED_KEKS, with the defaults.
     */
    keks: [...env.get('REWRAP_MANAGED_KEKS')],
    /**
     * When the scheduler task runs (cron, `node ace scheduler:run`): daily at
     * 03:00 by default; REWRAP_SCHEDULE overrides. It only decides from key
     * ages, so running it more often just notices due keys sooner.
     */
    schedule: env.get('REWRAP_SCHEDULE') ?? '0 3 * * *',
    /** `reencrypt` defaults (each overridable with flags). */
    reencrypt: {
      /** Rows per batch: one unwrap call, one wrap call, one UPDATE. */
      batchSize: 500,
      /** Sleep after every batch, ms. */
      sleepMs: 0,
      /** Adaptive pacing, as `rotation.niceRatio`. */
      niceRatio: 4,
      /** Extra passes for rows rewritten under the old KEK while the scan ran. */
      maxPasses: 3,
    },
  },
})

export default rewrapConfig
