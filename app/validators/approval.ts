import vine from '@vinejs/vine'
import string from '@adonisjs/core/helpers/string'
import { REQUEST_ACTIONS } from '#app/governance/acts'
import { PARAM_RE } from '#app/governance/approval_request'
import { SAID_RE } from '#app/governance/said'
import { kekNameRule } from '#validators/entry'

/** A request SAID (`E` + 43 Base64url characters). */
export const approvalSaidRule = vine.string().trim().regex(SAID_RE)

/**
 * `--approval <said>` of the governed commands (rotate:kek, kek:retire,
 * kek:unretire, kek:trim, reencrypt) and `approval:sign` / `approval:status`.
 */
export const approvalFlagValidator = vine.compile(
  vine.object({
    approval: approvalSaidRule.clone().optional(),
  })
)

/** A duration such as `24h`, `30m`, `2d`, in milliseconds. */
const durationMs = vine.createRule((value, _options, field) => {
  if (typeof value !== 'string') return
  let ms = 0
  try {
    ms = /^[0-9]+\s*[a-z]+$/i.test(value.trim()) ? Number(string.milliseconds.parse(value)) : 0
  } catch {
    ms = 0
  }
  if (!(ms >= 1000)) {
    field.report(`Invalid duration "${value}" (use e.g. 24h, 30m, 2d)`, 'duration', field)
  }
})

/**
 * `approval:request` and POST /approvals: `{ action, kek?, params?, expiresIn? }`
 * (`kek` is required except for the registry actions approver, credential and
 * credential-revocation, checked by the service).
 * Parameter names are lower-case identifiers, values short strings;
 * which names an action takes is checked by the service.
 */
export const createApprovalValidator = vine.compile(
  vine.object({
    action: vine.enum(REQUEST_ACTIONS),
    kek: kekNameRule.clone().optional(),
    params: vine
      .record(vine.string().trim().minLength(1).maxLength(200))
      .optional()
      .use(
        vine.createRule((value, _options, field) => {
          if (!value || typeof value !== 'object') return
          const bad = Object.keys(value).find((key) => !PARAM_RE.test(key))
          if (bad !== undefined) {
            field.report(`Invalid parameter name "${bad}" (lower-case identifier)`, 'param', field)
          }
        })()
      ),
    expiresIn: vine
      .string()
      .trim()
      .use(durationMs())
      .transform((value) => Number(string.milliseconds.parse(value)))
      .optional(),
  })
)

/** POST /approvals/:said/signatures: `{ signature: { i, s, d, sigs } }` (a KERI `-F` group as JSON). */
export const signApprovalValidator = vine.compile(
  vine.object({
    signature: vine.object({
      i: vine.string().regex(SAID_RE),
      s: vine.string().regex(/^[0-9a-f]{1,8}$/),
      d: vine.string().regex(SAID_RE),
      sigs: vine.array(vine.string().minLength(1).maxLength(200)).minLength(1).maxLength(16),
    }),
  })
)

/** GET /approvals?state=&limit= */
export const listApprovalsValidator = vine.compile(
  vine.object({
    state: vine.enum(['pending', 'used', 'expired'] as const).optional(),
    limit: vine.number().withoutDecimals().range([1, 500]).optional(),
  })
)

/** GET /approvals/:said and POST /approvals/:said/signatures route parameter. */
export const approvalParamsValidator = vine.compile(
  vine.object({
    said: approvalSaidRule.clone(),
  })
)
