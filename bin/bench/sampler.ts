/*
|--------------------------------------------------------------------------
| Resource sampling of one measured phase
|--------------------------------------------------------------------------
|
| RSS and heap of this process every 50 ms (peak kept), CPU time of this
| process and of the children, the machine's busy CPU share (/proc/stat)
| and the WAL Postgres wrote (cluster-wide: other databases on a shared
| server add to it).
|
*/
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { processCpuSeconds } from './processes.js'

/** Something whose CPU time is accounted per phase (a child process). */
export interface CpuSource {
  name: string
  cpuSeconds(): number | null
}

/** What a phase used. */
export interface PhaseResources {
  /** Peak RSS of this process during the phase, MB. */
  peakRssMb: number
  /** RSS when the phase started, MB. */
  startRssMb: number
  /** Peak V8 heap used, MB (garbage included). */
  peakHeapMb: number
  /** V8 heap used after a full GC at the end of the phase, MB (what is retained). */
  heapAfterGcMb: number
  /** CPU seconds of this process (all threads: the load generator too). */
  benchCpuSeconds: number
  /** CPU seconds of each child process, by name. */
  childCpuSeconds: Record<string, number | null>
  /**
   * CPU seconds of the Postgres backends connected to the benchmark's
   * database (all of its clients; approximate: a backend that ends during
   * the phase is not counted).
   */
  pgBackendsCpuSeconds: number | null
  /** Busy share of all cores of the machine (0–1), everything included. */
  machineBusy: number | null
  /** Cores of the machine busy on average (machineBusy × cores). */
  machineBusyCores: number | null
  /** WAL written by the whole Postgres cluster during the phase, bytes. */
  walBytes: number | null
}

const MB = 1024 * 1024

function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
    const ticks = line.trim().split(/\s+/).slice(1).map(Number)
    const idle = ticks[3] + (ticks[4] ?? 0)
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0)
    return { busy: total - idle, total }
  } catch {
    return null
  }
}

/**
 * Samples resources from `start()` until `stop()`.
 */
export class PhaseSampler {
  #timer?: NodeJS.Timeout
  #peakRss = 0
  #peakHeap = 0
  #startRss = 0
  #cpu = process.cpuUsage()
  #ticks = machineTicks()
  #children: CpuSource[]
  #childStart = new Map<string, number | null>()
  #walStart: string | null = null
  #wal: () => Promise<string | null>
  #pgPids: () => Promise<number[]>
  #pgStart = new Map<number, number>()

  constructor(
    children: CpuSource[],
    walLsn: () => Promise<string | null>,
    pgPids: () => Promise<number[]>,
    private gc: () => void
  ) {
    this.#children = children
    this.#wal = walLsn
    this.#pgPids = pgPids
  }

  async #pgCpu(): Promise<Map<number, number>> {
    const cpu = new Map<number, number>()
    for (const pid of await this.#pgPids().catch(() => [])) {
      const seconds = processCpuSeconds(pid)
      if (seconds !== null) cpu.set(pid, seconds)
    }
    return cpu
  }

  #sample() {
    const usage = process.memoryUsage()
    this.#peakRss = Math.max(this.#peakRss, usage.rss)
    this.#peakHeap = Math.max(this.#peakHeap, usage.heapUsed)
  }

  /**
   * Starts sampling.
   */
  async start() {
    this.#walStart = await this.#wal()
    this.#pgStart = await this.#pgCpu()
    this.#startRss = process.memoryUsage().rss
    this.#peakRss = 0
    this.#peakHeap = 0
    this.#sample()
    this.#cpu = process.cpuUsage()
    this.#ticks = machineTicks()
    for (const child of this.#children) this.#childStart.set(child.name, child.cpuSeconds())
    this.#timer = setInterval(() => this.#sample(), 50)
  }

  /**
   * Stops sampling; `walDiff` turns two LSNs into bytes.
   */
  async stop(walDiff: (from: string, to: string) => Promise<number>): Promise<PhaseResources> {
    clearInterval(this.#timer)
    this.#sample()
    const cpu = process.cpuUsage(this.#cpu)
    const ticks = machineTicks()
    const childCpuSeconds: Record<string, number | null> = {}
    for (const child of this.#children) {
      const before = this.#childStart.get(child.name)
      const now = child.cpuSeconds()
      childCpuSeconds[child.name] =
        before === null || before === undefined || now === null ? null : round(now - before, 2)
    }
    let machineBusy: number | null = null
    if (ticks && this.#ticks && ticks.total > this.#ticks.total) {
      machineBusy = (ticks.busy - this.#ticks.busy) / (ticks.total - this.#ticks.total)
    }
    const pgEnd = await this.#pgCpu()
    let pgBackendsCpuSeconds: number | null = null
    if (pgEnd.size > 0) {
      pgBackendsCpuSeconds = 0
      for (const [pid, seconds] of pgEnd)
        pgBackendsCpuSeconds += seconds - (this.#pgStart.get(pid) ?? 0)
      pgBackendsCpuSeconds = round(pgBackendsCpuSeconds, 2)
    }
    const walEnd = await this.#wal()
    this.gc()
    const heapAfterGc = process.memoryUsage().heapUsed
    const cores = availableParallelism()
    return {
      peakRssMb: round(this.#peakRss / MB, 1),
      startRssMb: round(this.#startRss / MB, 1),
      peakHeapMb: round(this.#peakHeap / MB, 1),
      heapAfterGcMb: round(heapAfterGc / MB, 1),
      benchCpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
      childCpuSeconds,
      pgBackendsCpuSeconds,
      machineBusy: machineBusy === null ? null : round(machineBusy, 3),
      machineBusyCores: machineBusy === null ? null : round(machineBusy * cores, 2),
      walBytes: this.#walStart && walEnd ? await walDiff(this.#walStart, walEnd) : null,
    }
  }
}

/**
 * Rounds to `digits` decimals.
 */
export function round(value: number, digits = 0): number {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}
