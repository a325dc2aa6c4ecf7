/*
|--------------------------------------------------------------------------
| CPU and progress of one workers row, sampled through the run
|--------------------------------------------------------------------------
|
| Every 250 ms: the run's `rewrapped` counter, the CPU seconds of the
| `rotate:kek` process tree (its own + its reaped children's + every live
| descendant's, from /proc), of the kms:serve child, of the Postgres
| backends connected to the bench database (each pid's last value kept, so
| a backend that ends still counts up to its last sample), of the server's
| background processes (WAL writer, checkpointer…: cluster-wide) and the
| machine's busy ticks. A window of the run (10 % → 90 % of its rows: the
| workers' boot and the last chunk's tail left out) is the difference of
| two samples.
|
*/
import { readdirSync, readFileSync } from 'node:fs'
import type { Db } from './context.js'

/** Cumulative values at one moment. */
export interface WorkersSample {
  /** ms since the sampler started. */
  atMs: number
  rewrapped: number
  /** Workers that have taken a chunk of the run so far (0 in-process). */
  workersSeen: number
  /** rotate:kek and every worker child, CPU seconds. */
  rotateCpu: number
  kmsCpu: number | null
  /** Backends of the bench database (every client: workers, the job engine, this sampler). */
  pgBackendsCpu: number
  /** The server's background processes (cluster-wide). */
  pgAuxCpu: number
  machineBusyTicks: number
  machineTotalTicks: number
}

/** /proc/<pid>/stat fields: ppid, CPU seconds of the process (+ its reaped children). */
function stat(pid: number): { ppid: number; own: number; children: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // Fields 4 (ppid), 14–17 (utime, stime, cutime, cstime), 1-based; f[] starts at field 3.
    return {
      ppid: Number(f[1]),
      own: (Number(f[11]) + Number(f[12])) / 100,
      children: (Number(f[13]) + Number(f[14])) / 100,
    }
  } catch {
    return null
  }
}

/**
 * CPU seconds of `root` and all its descendants: live ones read directly,
 * ended ones through their parent's reaped-children time.
 */
export function treeCpuSeconds(root: number): number | null {
  const rootStat = stat(root)
  if (!rootStat) return null
  const byParent = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    const s = stat(pid)
    if (!s) continue
    const list = byParent.get(s.ppid) ?? []
    list.push(pid)
    byParent.set(s.ppid, list)
  }
  let total = rootStat.own + rootStat.children
  const queue = [...(byParent.get(root) ?? [])]
  while (queue.length) {
    const pid = queue.pop()!
    const s = stat(pid)
    if (s) total += s.own + s.children
    queue.push(...(byParent.get(pid) ?? []))
  }
  return total
}

function machineTicks(): { busy: number; total: number } {
  try {
    const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1)
    const n = ticks.map(Number)
    const total = n.slice(0, 8).reduce((a, b) => a + b, 0)
    return { busy: total - n[3] - (n[4] ?? 0), total }
  } catch {
    return { busy: 0, total: 0 }
  }
}

/** Sums each pid's CPU: the start value of pids seen at the start is subtracted. */
class PidCpu {
  #first = new Map<number, number>()
  #last = new Map<number, number>()
  #started = false

  add(pids: number[]) {
    for (const pid of pids) {
      const s = stat(pid)
      if (!s) continue
      // A backend born after the start counts from zero: all its CPU is the run's.
      if (!this.#first.has(pid)) this.#first.set(pid, this.#started ? 0 : s.own)
      this.#last.set(pid, s.own)
    }
    this.#started = true
  }

  get total() {
    let sum = 0
    for (const [pid, last] of this.#last) sum += last - (this.#first.get(pid) ?? 0)
    return sum
  }
}

/**
 * Samples a run from `start()` until `stop()`; `rotatePid()` is the
 * rotate:kek child (null before it is spawned).
 */
export class WorkersSampler {
  samples: WorkersSample[] = []
  #timer?: NodeJS.Timeout
  #began = Date.now()
  #backends = new PidCpu()
  #aux = new PidCpu()
  #busy = false
  #lastRotateCpu = 0

  constructor(
    private db: Db,
    private kekName: string,
    private afterRunId: number,
    private rotatePid: () => number | undefined,
    private kmsCpu: () => number | null
  ) {}

  async #sample() {
    if (this.#busy) return
    this.#busy = true
    try {
      const { rows } = await this.db.rawQuery(
        `SELECT pid, datname IS NOT NULL AS ours FROM pg_stat_activity
          WHERE datname = current_database() OR (datname IS NULL AND backend_type <> 'client backend')`
      )
      this.#backends.add(rows.filter((r: any) => r.ours).map((r: any) => r.pid))
      this.#aux.add(rows.filter((r: any) => !r.ours).map((r: any) => r.pid))
      const run = await this.db.rawQuery(
        `SELECT r.rewrapped,
                (SELECT count(DISTINCT c.worker_id)::int FROM rewrap_chunks c
                  WHERE c.run_kind = 'rotation' AND c.run_id = r.id) AS workers
           FROM key_rotations r WHERE r.kek_name = ? AND r.id > ? ORDER BY r.id DESC LIMIT 1`,
        [this.kekName, this.afterRunId]
      )
      const pid = this.rotatePid()
      const rotateCpu = pid ? treeCpuSeconds(pid) : null
      // The tree's last reading is kept once the process has gone.
      if (rotateCpu !== null) this.#lastRotateCpu = rotateCpu
      const ticks = machineTicks()
      this.samples.push({
        atMs: Date.now() - this.#began,
        rewrapped: Number(run.rows[0]?.rewrapped ?? 0),
        workersSeen: Number(run.rows[0]?.workers ?? 0),
        rotateCpu: this.#lastRotateCpu,
        kmsCpu: this.kmsCpu(),
        pgBackendsCpu: this.#backends.total,
        pgAuxCpu: this.#aux.total,
        machineBusyTicks: ticks.busy,
        machineTotalTicks: ticks.total,
      })
    } finally {
      this.#busy = false
    }
  }

  /** Takes the first sample and samples every 250 ms. */
  async start() {
    this.#began = Date.now()
    await this.#sample()
    this.#timer = setInterval(() => void this.#sample().catch(() => {}), 250)
  }

  /** Stops sampling after one last sample. */
  async stop() {
    clearInterval(this.#timer)
    while (this.#busy) await new Promise((resolve) => setImmediate(resolve))
    await this.#sample()
  }

  /**
   * The window of the steady state: from the first sample past `from` of
   * `rows` at which `workers` workers have taken a chunk (their boot left
   * out), to the first past `to`; the whole run when it has fewer than 3
   * samples.
   */
  window(rows: number, workers: number, from = 0.1, to = 0.9): [WorkersSample, WorkersSample] {
    const first = this.samples.find((s) => s.rewrapped >= rows * from && s.workersSeen >= workers)
    const last = this.samples.find((s) => s.rewrapped >= rows * to)
    if (first && last && this.samples.indexOf(last) - this.samples.indexOf(first) >= 2) {
      return [first, last]
    }
    return [this.samples[0], this.samples[this.samples.length - 1]]
  }
}
