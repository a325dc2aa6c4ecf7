import vine from '@vinejs/vine'
import { kekNameRule } from '#validators/entry'

/**
 * `--workers N` of rotate:kek and reencrypt: local `rewrap:worker` processes (1–64).
 */
export const localWorkersRule = vine.number().withoutDecimals().range([1, 64])

/**
 * rotate:kek arguments and flags.
 */
export const rotateKekValidator = vine.compile(
  vine.object({
    kek: kekNameRule,
    batchSize: vine.number().withoutDecimals().range([1, 50_000]).optional(),
    sleepMs: vine.number().withoutDecimals().range([0, 600_000]).optional(),
    maxRate: vine.number().withoutDecimals().min(0).optional(),
    niceRatio: vine.number().range([0, 100]).optional(),
    latencyBudget: vine.number().range([1.01, 100]).optional(),
    targetVersion: vine.number().withoutDecimals().min(1).optional(),
    workers: localWorkersRule.clone().optional(),
  })
)

/**
 * rewrap:worker flags.
 */
export const rewrapWorkerValidator = vine.compile(
  vine.object({
    concurrency: vine.number().withoutDecimals().range([1, 64]),
  })
)
