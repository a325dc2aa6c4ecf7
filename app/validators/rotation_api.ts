import vine from '@vinejs/vine'
import { kekNameRule } from '#validators/entry'
import { approvalSaidRule } from '#validators/approval'

/**
 * GET /rotations/status query: `?kek=` narrows the report to one KEK.
 */
export const rotationStatusValidator = vine.compile(
  vine.object({
    kek: kekNameRule.clone().optional(),
  })
)

/**
 * GET /rotations query: `?kek=&limit=` (limit 1–500, default 50).
 */
export const listRotationsValidator = vine.compile(
  vine.object({
    kek: kekNameRule.clone().optional(),
    limit: vine.number().withoutDecimals().range([1, 500]).optional(),
  })
)

/**
 * POST /rotations body. `rotate` (default true) adds a KMS version first;
 * `targetVersion` rewraps to an existing version instead (no rotation);
 * `resume` continues the KEK's unfinished run.
 */
export const startRotationValidator = vine.compile(
  vine.object({
    kek: kekNameRule.clone(),
    rotate: vine.boolean({ strict: true }).optional(),
    targetVersion: vine.number().withoutDecimals().min(1).optional(),
    batchSize: vine.number().withoutDecimals().range([1, 50_000]).optional(),
    sleepMs: vine.number().withoutDecimals().range([0, 600_000]).optional(),
    maxRate: vine.number().withoutDecimals().min(0).optional(),
    niceRatio: vine.number().range([0, 100]).optional(),
    latencyBudget: vine.number().range([1.01, 100]).optional(),
    resume: vine.boolean({ strict: true }).optional(),
    /** Chunks as jobs: the run is cut into chunks for `rewrap:worker` processes. */
    distributed: vine.boolean({ strict: true }).optional(),
    /** Dual control: SAID of the approved request (not needed with `resume`). */
    approval: approvalSaidRule.clone().optional(),
  })
)

/** Validated POST /rotations body. */
export type StartRotationInput = Awaited<ReturnType<typeof startRotationValidator.validate>>
