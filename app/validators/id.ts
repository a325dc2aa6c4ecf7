import vine from '@vinejs/vine'

/** The largest PostgreSQL bigint (ids of entries and rotation runs). */
export const MAX_BIGINT = 9223372036854775807n

/** Longest id text accepted (leading zeros included) before it is refused unread. */
const MAX_ID_LENGTH = 64

/**
 * The canonical decimal form of a positive bigint id (`"007"` → `"7"`), or
 * null when `value` cannot be one: not digits only, 0, over 2^63-1, or
 * longer than 64 characters (pure).
 */
export function canonicalBigintId(value: unknown): string | null {
  const text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : value
  if (typeof text !== 'string' || text.length > MAX_ID_LENGTH || !/^[0-9]+$/.test(text)) {
    return null
  }
  const id = BigInt(text)
  return id >= 1n && id <= MAX_BIGINT ? id.toString() : null
}

/** An id as it may be quoted back in an error message (bounded length). */
export function shownId(value: unknown): string {
  const text = String(value)
  return text.length > 32 ? `${text.slice(0, 32)}…` : text
}

/** Vine rule: a positive bigint id, reported as `bigintId`. */
const bigintId = vine.createRule((value, _options, field) => {
  if (canonicalBigintId(value) === null) {
    field.report('The {{ field }} field must be an id from 1 to 2^63-1', 'bigintId', field)
  }
})

/**
 * Route params `{ id }` of `/entries/:id` and `/rotations/:id…`: a
 * positive bigint, returned in canonical form.
 */
export const idParamsValidator = vine.compile(
  vine.object({
    id: vine
      .string()
      .use(bigintId())
      .transform((value) => canonicalBigintId(value)!),
  })
)
