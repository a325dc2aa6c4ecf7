/*
|--------------------------------------------------------------------------
| CPU priority of background processes
|--------------------------------------------------------------------------
|
| `rotate:kek`, `reencrypt` and `scheduler:run` do nothing but background
| work: they lower their own scheduling priority (nice) so requests served
| on the same host get the CPU first. On Linux every thread of the process
| is re-niced (V8's GC helpers and libuv's pool included: a thread is what
| setpriority() acts on); elsewhere only the calling thread.
|
*/
import { readdirSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { lowerRegisteredBackends } from '#services/backend_priority'
import { lowerSessionAutogroup } from '#services/autogroup'

/**
 * Lowers the priority of this process to `nice` (0 to 19; a lower value
 * than the current one is left alone: raising priority needs privileges and
 * is not this helper's job). Answers the nice value in effect, or null when
 * the OS refused.
 */
export function lowerCpuPriority(nice: number | null | undefined): number | null {
  if (nice === null || nice === undefined) return null
  const target = Math.min(19, Math.max(0, Math.round(nice)))
  try {
    if (getPriority() >= target) return getPriority()
    let threads: number[] = []
    try {
      threads = readdirSync('/proc/self/task').map(Number)
    } catch {
      threads = [0]
    }
    for (const tid of threads) {
      try {
        setPriority(tid, target)
      } catch {
        // A thread that just exited.
      }
    }
    // Started as a session of its own (a systemd unit, `setsid`): its nice counts only
    // within that session unless the session's autogroup is lowered too (autogroup.ts).
    lowerSessionAutogroup(process.pid, target)
    return getPriority()
  } catch {
    return null
  }
}

/** The part of config/rewrap.ts `rotation` that sets a background process's priority. */
export interface BackgroundPriorityOptions {
  cpuNice: number | null
  niceLocalBackends: boolean
}

/**
 * Enters background priority: this process at `cpuNice` and, with
 * `niceLocalBackends`, its Postgres backends too when the server runs on
 * this host (backend_priority.ts). Answers the nice value in effect.
 */
export function enterBackgroundPriority(options: BackgroundPriorityOptions): number | null {
  const nice = lowerCpuPriority(options.cpuNice)
  if (nice !== null && nice > 0 && options.niceLocalBackends) lowerRegisteredBackends(nice)
  return nice
}
