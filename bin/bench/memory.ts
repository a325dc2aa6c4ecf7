/*
|--------------------------------------------------------------------------
| Memory of the benchmark process: checkpoints and a forced GC
|--------------------------------------------------------------------------
*/
import v8 from 'node:v8'
import vm from 'node:vm'
import { round } from './sampler.js'

/** RSS and heap of this process at one point of the run. */
export interface MemoryCheckpoint {
  at: string
  rssMb: number
  heapUsedMb: number
}

/** RSS of this process at points of the run (what the phases start from). */
export const checkpoints: MemoryCheckpoint[] = []

/** Records the process's RSS and heap now, under `at`. */
export function checkpoint(at: string) {
  const usage = process.memoryUsage()
  checkpoints.push({
    at,
    rssMb: round(usage.rss / 1024 / 1024, 1),
    heapUsedMb: round(usage.heapUsed / 1024 / 1024, 1),
  })
}

/** A function that runs a full GC (V8's `gc`, exposed at run time). */
export function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  return () => gc()
}
