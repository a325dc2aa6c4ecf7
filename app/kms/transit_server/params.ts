/*
|--------------------------------------------------------------------------
| Request field readers (Vault's framework.FieldData, weakly typed)
|--------------------------------------------------------------------------
|
| Vault accepts `"2"` as well as `2` for an int and `"true"` for a bool.
| Error texts name the field, never echo its value.
|
*/
import { badRequest } from '#kms/transit_server/http_error'

/**
 * An integer field; undefined when absent or null.
 */
export function intField(source: Record<string, unknown>, field: string): number | undefined {
  const value = source[field]
  if (value === undefined || value === null || value === '') return undefined
  const number = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value
  if (typeof number !== 'number' || !Number.isSafeInteger(number)) {
    throw badRequest(`field "${field}" must be an integer`)
  }
  return number
}

/**
 * A boolean field; undefined when absent or null.
 */
export function boolField(source: Record<string, unknown>, field: string): boolean | undefined {
  const value = source[field]
  if (value === undefined || value === null) return undefined
  if (typeof value === 'boolean') return value
  if (value === 'true' || value === '1' || value === 1) return true
  if (value === 'false' || value === '0' || value === 0) return false
  throw badRequest(`field "${field}" must be a boolean`)
}

/**
 * A string field; undefined when absent or null.
 */
export function stringField(source: Record<string, unknown>, field: string): string | undefined {
  const value = source[field]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw badRequest(`field "${field}" must be a string`)
  return value
}
