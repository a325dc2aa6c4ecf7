/*
|--------------------------------------------------------------------------
| The Ace commands' log file: made writable, kept bounded
|--------------------------------------------------------------------------
|
| Every `node ace` command on a terminal appends its full log to one file
| (tmp/logs/ace.log by default). Bounded by size: when it has grown past the
| limit at a command's start, it becomes `<file>.1` (replacing the previous
| one) and a new file begins, so the folder holds at most about twice the
| limit. Checked once per process, before any line is written.
|
*/
import { closeSync, mkdirSync, openSync, renameSync, statSync } from 'node:fs'
import { dirname } from 'node:path'

/** Size past which the log file is rolled over at a command's start (10 MiB). */
export const LOG_FILE_MAX_BYTES = 10 * 1024 * 1024

/**
 * Prepares `path` for appending: makes its folder, rolls it over to
 * `<path>.1` when larger than `maxBytes`, and checks it can be opened.
 * Answers false when it cannot be written (the caller logs elsewhere).
 */
export function prepareLogFile(path: string, maxBytes = LOG_FILE_MAX_BYTES): boolean {
  try {
    mkdirSync(dirname(path), { recursive: true })
    rollOver(path, maxBytes)
    closeSync(openSync(path, 'a'))
    return true
  } catch {
    return false
  }
}

function rollOver(path: string, maxBytes: number) {
  let size: number
  try {
    size = statSync(path).size
  } catch {
    return
  }
  if (size <= maxBytes) return
  try {
    renameSync(path, `${path}.1`)
  } catch {
    // Another command rolled it over first: append to the new file.
  }
}
