/*
|--------------------------------------------------------------------------
| Child processes of the benchmark
|--------------------------------------------------------------------------
|
| `node ace …` commands (migrations, kms:serve) and the HTTP server
| (bin/server.ts), all run by this Node binary with the TypeScript loader.
| Secrets reach them through the environment only (never argv, never
| printed); their output goes to log files under tmp/bench-logs.
|
*/
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LOG_DIR = fileURLToPath(new URL('../../tmp/bench-logs/', import.meta.url))

/** A long-running child (server) with its CPU time readable from /proc. */
export interface Child {
  name: string
  pid: number
  /** Log file of its stdout and stderr. */
  logFile: string
  /** CPU seconds (user + system) used so far; null when /proc is unavailable. */
  cpuSeconds(): number | null
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>
}

function logFileFor(name: string) {
  mkdirSync(LOG_DIR, { recursive: true })
  return `${LOG_DIR}${name}-${process.pid}.log`
}

/** Children still running: stopped with this process, however it ends. */
const live = new Set<ChildProcess>()

function killLive(signal: NodeJS.Signals) {
  for (const child of live) child.kill(signal)
}

// A bench or load run stopped by a signal (or ending on an error) leaves no server, KMS
// stand-in or rotation behind.
process.once('exit', () => killLive('SIGKILL'))
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killLive('SIGTERM')
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}

function start(name: string, args: string[], env: NodeJS.ProcessEnv, pipeStdout = false) {
  const logFile = logFileFor(name)
  const fd = openSync(logFile, 'w')
  const child = spawn(process.execPath, args, {
    cwd: APP_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', pipeStdout ? 'pipe' : fd, fd],
  })
  closeSync(fd)
  live.add(child)
  child.once('exit', () => live.delete(child))
  return { child, logFile }
}

function tail(logFile: string) {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n')
  } catch {
    return ''
  }
}

/** What a finished `node ace` command left. */
export interface AceResult {
  /** Its standard output (for `--json` commands). */
  stdout: string
  /** Wall-clock seconds from spawn to exit (app boot included). */
  seconds: number
  /** Peak RSS of the process (VmHWM), MB; null unless sampled. */
  peakRssMb: number | null
}

/**
 * Peak and current RSS of a process from /proc/<pid>/status, MB.
 */
export function processRss(pid: number): { hwmMb: number; rssMb: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1])
    return { hwmMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024 }
  } catch {
    return null
  }
}

/**
 * Runs `node ace <args>` to completion; throws with the log's tail on
 * failure. `sampleRss` reads the child's peak RSS every 50 ms.
 */
export async function runAce(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { sampleRss?: boolean; entry?: string } = {}
): Promise<AceResult> {
  return spawnAce(args, env, options).done
}

/**
 * Starts `node ace <args>`: the child (to stop it early) and its
 * completion as {@link runAce} answers it.
 */
export function spawnAce(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { sampleRss?: boolean; entry?: string } = {}
): { child: ChildProcess; done: Promise<AceResult> } {
  const began = performance.now()
  const { child, logFile } = start(
    `ace-${args[0].replace(/\W/g, '_')}`,
    [options.entry ?? 'ace.js', ...args],
    env,
    true
  )
  let stdout = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  let peak: number | null = null
  const sample = () => {
    const rss = child.pid ? processRss(child.pid) : null
    // An exiting process's status has no Vm* lines any more (NaN): keep the last peak.
    if (rss && Number.isFinite(rss.hwmMb)) peak = Math.max(peak ?? 0, rss.hwmMb, rss.rssMb)
  }
  const timer = options.sampleRss ? setInterval(sample, 50) : undefined
  const done = (async () => {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', resolve)
    })
    clearInterval(timer)
    if (code !== 0) {
      // --json commands answer their error on stdout: show it with the log's tail.
      const said = stdout.trim().split('\n').slice(-5).join('\n')
      throw new Error(`node ace ${args[0]} exited with ${code}:\n${said}\n${tail(logFile)}`)
    }
    return { stdout, seconds: (performance.now() - began) / 1000, peakRssMb: peak }
  })()
  return { child, done }
}

/**
 * CPU seconds of a process from /proc/<pid>/stat (null when unreadable).
 */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 (1-based); fields[] starts at field 3.
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return null
  }
}

/**
 * Starts a long-running child and waits until `ready()` answers true.
 */
export async function startChild(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: () => Promise<boolean>,
  timeoutMs = 60_000
): Promise<Child> {
  const { child, logFile } = start(name, args, env)
  let exited: number | null | undefined
  child.once('exit', (code) => (exited = code))
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`${name} exited with ${exited} before it was ready:\n${tail(logFile)}`)
    }
    if (await ready().catch(() => false)) break
    if (Date.now() > deadline) {
      await stopChild(child)
      throw new Error(`${name} was not ready after ${timeoutMs} ms:\n${tail(logFile)}`)
    }
    await sleep(200)
  }
  return {
    name,
    pid: child.pid!,
    logFile,
    cpuSeconds: () => processCpuSeconds(child.pid!),
    stop: () => stopChild(child),
  }
}

async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

/**
 * True when `url` answers with a status below 500.
 */
export async function answers(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
  await response.body?.cancel()
  return response.status < 500
}

/** The TypeScript loader flag for running .ts entry points of the app. */
export const TS_LOADER = '--import=@poppinss/ts-exec'
