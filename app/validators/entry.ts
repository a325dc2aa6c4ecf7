import vine from '@vinejs/vine'

/** KEK names: letters, digits, `_ - .`, up to 128 characters. */
/** A KEK name: letters, digits and _ . -, 1 to 128 characters, starting with a letter or digit. */
export const KEK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/

export const kekNameRule = vine.string().trim().regex(KEK_NAME_PATTERN)

/**
 * POST /entries: `{ kek, data }`, data any JSON value but null.
 */
export const createEntryValidator = vine.compile(
  vine.object({
    kek: kekNameRule,
    data: vine.any(),
  })
)

/**
 * PUT /entries/:id: `{ data }` (the entry keeps its KEK).
 */
export const updateEntryValidator = vine.compile(
  vine.object({
    data: vine.any(),
  })
)
