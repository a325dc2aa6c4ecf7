/*
|--------------------------------------------------------------------------
| Secret-free description of a failure
|--------------------------------------------------------------------------
|
| Moved unchanged out of the status service (the status report and the
| readiness checks share it). It is the same rule as `safeMessage`; the
| one error vocabulary of app/errors.ts replaces both.
|
*/

/** `CODE: message` for Rewrap's own errors (never secret), the bare code or class otherwise. */
export function describeFailure(error: unknown): string {
  const err = error as { code?: string; message?: string; name?: string }
  if (err?.code?.startsWith('E_')) return `${err.code}: ${err.message}`
  if (err?.code) return err.code
  return err?.name ?? 'unknown error'
}
