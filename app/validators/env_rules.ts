/*
|--------------------------------------------------------------------------
| Custom rules for start/env.ts
|--------------------------------------------------------------------------
|
| AdonisJS env schema entries are functions `(key, value) => parsed`; these
| throw a message naming the variable so a bad value stops the boot with a
| clear reason instead of surfacing later inside the scheduler.
|
*/
import cron from 'node-cron'
import { KEK_NAME_PATTERN } from '#validators/entry'

/**
 * Optional comma-separated KEK names ("orders, payments"): a de-duplicated
 * array, `[]` when unset or empty.
 */
export function kekNameList(key: string, value?: string): string[] {
  const names = (value ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean)
  const bad = names.filter((name) => !KEK_NAME_PATTERN.test(name))
  if (bad.length > 0) {
    throw new Error(
      `Invalid env variable "${key}": ${bad.map((b) => JSON.stringify(b)).join(', ')} ` +
        'is not a KEK name (letters, digits and _ . -, 1 to 128 characters)'
    )
  }
  return [...new Set(names)]
}

/**
 * Optional cron expression (5 or 6 fields, as the scheduler accepts);
 * undefined when unset.
 */
export function cronExpression(key: string, value?: string): string | undefined {
  const trimmed = value?.trim()
  if (!trimmed) return undefined
  if (!cron.validate(trimmed)) {
    throw new Error(
      `Invalid env variable "${key}": ${JSON.stringify(trimmed)} is not a cron expression`
    )
  }
  return trimmed
}
