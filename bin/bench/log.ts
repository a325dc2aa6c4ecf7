/*
|--------------------------------------------------------------------------
| Progress lines of the benchmark
|--------------------------------------------------------------------------
*/
import { performance } from 'node:perf_hooks'

const started = performance.now()

/** Progress lines on stderr (never a secret), with the seconds since the run began. */
export function log(message: string) {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[bench ${seconds}s] ${message}\n`)
}
