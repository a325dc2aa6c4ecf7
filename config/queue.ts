/*
|--------------------------------------------------------------------------
| Job engine (distributed runs)
|--------------------------------------------------------------------------
|
| `@adonisjs/queue` on the app's own PostgreSQL (its database adapter; no
| other server). A chunk of a distributed run is a job of the `rewrap-chunks`
| queue. A worker renews its jobs every `stalledThreshold / 2`; a job whose
| worker died (SIGKILL, lost host) is put back after `stalledThreshold` by
| any other worker's stalled check (every `stalledInterval`), so it is taken
| again within about `stalledThreshold + stalledInterval + idleDelay`. The
| chunk's own lease (rewrap_chunks.lease_until) has the same length
| (config/rewrap.ts `distributed.leaseMs`).
|
*/
import env from '#start/env'
import { defineConfig, drivers, exponentialBackoff } from '@adonisjs/queue'

const leaseMs = env.get('REWRAP_WORKER_LEASE_MS') ?? 30_000

export default defineConfig({
  default: 'database',
  adapters: {
    database: drivers.database({ connectionName: 'postgres' }),
  },
  worker: {
    concurrency: 1,
    idleDelay: '500ms',
    stalledThreshold: leaseMs,
    stalledInterval: Math.max(250, Math.floor(leaseMs / 2)),
    // The chunk table is the truth: a job that stalls again is put back again, never dropped.
    maxStalledCount: 1_000_000,
  },
  // A chunk job that fails (KMS past its outage bound, database away) is tried again, for as
  // long as its run is running (a job of a run that ended returns at once): never dropped.
  retry: {
    maxRetries: 1_000_000,
    backoff: exponentialBackoff({ baseDelay: '1s', maxDelay: '1m', jitter: true }),
  },
  locations: [],
})
