import vine from '@vinejs/vine'

/**
 * POST /approvers body and the file approver:register reads: `{ name,
 * inception, authority? }`, the inception being the signed KERI message
 * (CESR text) approver:init wrote. Other fields (`aid`) are ignored.
 */
export const registerApproverValidator = vine.compile(
  vine.object({
    name: vine.string().trim().minLength(1).maxLength(200),
    inception: vine.string().minLength(1).maxLength(16_384),
    authority: vine.boolean().optional(),
  })
)
