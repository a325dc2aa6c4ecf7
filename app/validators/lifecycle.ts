import vine from '@vinejs/vine'
import { kekNameRule } from '#validators/entry'
import { localWorkersRule } from '#validators/rotation'

/**
 * `rotation:preflight`, `kek:retire`, `kek:trim`: one KEK name.
 */
export const lifecycleKekValidator = vine.compile(
  vine.object({
    kek: kekNameRule.clone(),
  })
)

/**
 * `rotation:verify`: KEK name and sample size.
 */
export const verifyValidator = vine.compile(
  vine.object({
    kek: kekNameRule.clone(),
    sample: vine.number().withoutDecimals().range([0, 100_000]).optional(),
    batchSize: vine.number().withoutDecimals().range([1, 10_000]).optional(),
  })
)

/**
 * `kek:unretire`: KEK name and the version to lower min_decryption_version to.
 */
export const unretireValidator = vine.compile(
  vine.object({
    kek: kekNameRule.clone(),
    to: vine.number().withoutDecimals().min(1).optional(),
  })
)

/**
 * `reencrypt`: source and target KEKs and throttling.
 */
export const reencryptValidator = vine.compile(
  vine.object({
    from: kekNameRule.clone(),
    to: kekNameRule.clone(),
    batchSize: vine.number().withoutDecimals().range([1, 10_000]).optional(),
    sleepMs: vine.number().withoutDecimals().range([0, 600_000]).optional(),
    niceRatio: vine.number().range([0, 100]).optional(),
    workers: localWorkersRule.clone().optional(),
    latencyBudget: vine.number().range([1.01, 100]).optional(),
  })
)

/**
 * GET /reencrypts query: `?from=&limit=` (limit 1–500, default 50).
 */
export const listReencryptsValidator = vine.compile(
  vine.object({
    from: kekNameRule.clone().optional(),
    limit: vine.number().withoutDecimals().range([1, 500]).optional(),
  })
)
