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

/**
 * An error's message fit for a run row: Rewrap errors (E_*) carry no
 * secrets; anything else is reduced to its code or class.
 */
export function safeMessage(error: unknown): string {
  const err = error as { code?: string; message?: string; name?: string }
  if (err?.code?.startsWith('E_')) return `${err.code}: ${err.message}`
  return err?.code ?? err?.name ?? 'unknown error'
}
