/*
|--------------------------------------------------------------------------
| Progress of a batched run (rotation, re-encrypt)
|--------------------------------------------------------------------------
*/

/** Progress of a run: rows done of total, rate of this process, ETA. */
export interface RunProgress<Run> {
  run: Run
  done: number
  total: number
  rowsPerSecond: number
  etaSeconds: number | null
}

/**
 * Progress of `run` after `done` rows in all, `doneHere` of them by this
 * process since `startedAt` (ms), at `now` (ms).
 */
export function runProgress<Run extends { totalRows: number }>(
  run: Run,
  done: number,
  doneHere: number,
  startedAt: number,
  now: number
): RunProgress<Run> {
  const seconds = Math.max(0.001, (now - startedAt) / 1000)
  const rate = doneHere / seconds
  const left = Math.max(0, run.totalRows - done)
  return {
    run,
    done,
    total: run.totalRows,
    rowsPerSecond: Math.round(rate),
    etaSeconds: rate > 0 ? Math.ceil(left / rate) : null,
  }
}
