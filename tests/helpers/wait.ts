/*
|--------------------------------------------------------------------------
| Waiting in tests: poll a condition with a deadline, never "sleep N ms"
|--------------------------------------------------------------------------
*/

/** How long and how often {@link waitFor} polls, and what it names on timeout. */
export interface WaitOptions {
  /** Give up after this many ms (default 30 s). */
  timeoutMs?: number
  /** Poll every this many ms (default 25). */
  intervalMs?: number
  /** What is awaited, for the timeout message. */
  what?: string
  /** Checked before each poll: a reason (e.g. "the child exited") ends the wait at once. */
  giveUp?: () => string | undefined | null | false
}

/**
 * Polls `check` until it answers a truthy value (resolved with it) or the
 * deadline passes (rejects naming `what` and the last error `check` threw).
 * A throw from `check` counts as "not yet".
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 30_000, intervalMs = 25, what = 'condition', giveUp }: WaitOptions = {}
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    const reason = giveUp?.()
    if (reason) throw new Error(`gave up waiting for ${what}: ${reason}`)
    try {
      const value = await check()
      if (value) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastError ? ` (last error: ${(lastError as Error).message})` : '')
      )
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
