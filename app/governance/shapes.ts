/*
|--------------------------------------------------------------------------
| Shape checks shared by the governance documents
|--------------------------------------------------------------------------
*/
import { SAID_RE } from './said.js'

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

/** True for a plain object whose keys are exactly `keys`, in that order. */
export function hasExactKeys(
  value: unknown,
  keys: readonly string[]
): value is Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false
  const actual = Object.keys(value)
  return actual.length === keys.length && actual.every((key, n) => key === keys[n])
}

/** True for an ISO 8601 date-time with a zone (`2026-01-02T03:04:05.000Z`). */
export function isDateTime(value: unknown): value is string {
  return typeof value === 'string' && DATE_TIME_RE.test(value) && !Number.isNaN(Date.parse(value))
}

/** Milliseconds since the epoch of an ISO date-time (callers check `isDateTime` first). */
export function epochMs(value: string): number {
  return Date.parse(value)
}

/** True for a self-addressing AID or SAID (`E` + 43 Base64url characters). */
export function isSaid(value: unknown): value is string {
  return typeof value === 'string' && SAID_RE.test(value)
}

/** Role names: lower-case identifiers (`cto`, `security_officer`). */
export const ROLE_RE = /^[a-z][a-z0-9_]{0,63}$/
