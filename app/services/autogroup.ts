/*
|--------------------------------------------------------------------------
| Autogroup priority (Linux session scheduling)
|--------------------------------------------------------------------------
|
| With autogroup scheduling (`kernel.sched_autogroup_enabled`, on by default
| in many distributions' kernels) the CPU is shared between sessions first
| and a task's nice only counts against tasks of its own session. PostgreSQL
| backends each lead a session of their own (the postmaster's children call
| setsid), so a backend re-niced to 19 still competed at full weight with
| the backends and the Node process serving requests: measured on the
| bench host, the paced rotation's backends at nice 19 cost the foreground
| p99 1.3× against the same moments with the rotation stopped; with their
| autogroup lowered as well, 0.97× (docs/benchmarks.md, 2026-12-01).
|
| A session's autogroup nice is written to /proc/<pid>/autogroup (same
| permission as setpriority). It is only written for a process that leads
| its own session: lowering a shared session (a shell's) would slow every
| process of it, and the setting outlives the process.
|
*/
import { readFileSync, writeFileSync } from 'node:fs'

/** The session id in /proc/<pid>/stat text (the 6th field), or null. */
export function sessionOf(statText: string): number | null {
  const close = statText.lastIndexOf(')')
  if (close < 0) return null
  // After "pid (comm) ": state ppid pgrp session …
  const session = Number(statText.slice(close + 2).split(' ')[3])
  return Number.isInteger(session) ? session : null
}

/** The nice value in /proc/<pid>/autogroup text (`/autogroup-25 nice 0`), or null. */
export function autogroupNice(text: string): number | null {
  const match = /\bnice\s+(-?\d+)\s*$/.exec(text.trim())
  return match ? Number(match[1]) : null
}

/** What {@link lowerSessionAutogroup} did. */
export type AutogroupOutcome = 'lowered' | 'unchanged' | 'shared-session' | 'unavailable'

/** File access, replaceable in tests. */
export interface ProcFiles {
  read(path: string): string
  write(path: string, text: string): void
}

const realProc: ProcFiles = {
  read: (path) => readFileSync(path, 'utf8'),
  write: (path, text) => writeFileSync(path, text),
}

/**
 * Lowers the autogroup of `pid` to `nice` when `pid` leads its own session;
 * never raises it. `unavailable`: no autogroup (kernel without it, not
 * Linux) or no permission.
 */
export function lowerSessionAutogroup(
  pid: number,
  nice: number,
  proc: ProcFiles = realProc
): AutogroupOutcome {
  try {
    if (sessionOf(proc.read(`/proc/${pid}/stat`)) !== pid) return 'shared-session'
    const current = autogroupNice(proc.read(`/proc/${pid}/autogroup`))
    if (current === null) return 'unavailable'
    if (current >= nice) return 'unchanged'
    proc.write(`/proc/${pid}/autogroup`, String(nice))
    return 'lowered'
  } catch {
    return 'unavailable'
  }
}
