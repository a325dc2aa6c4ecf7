import vine from '@vinejs/vine'

/**
 * GET /audit query: `?after=<seq>&limit=<n>` (records with seq > after,
 * oldest first; after defaults to -1 = from the first, limit 1–500, default 100).
 */
export const listAuditValidator = vine.compile(
  vine.object({
    after: vine.number().withoutDecimals().min(-1).optional(),
    limit: vine.number().withoutDecimals().range([1, 500]).optional(),
  })
)
