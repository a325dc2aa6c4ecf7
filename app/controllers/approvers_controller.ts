import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { ApproverService } from '#services/approver_service'
import { registerApproverValidator } from '#validators/governance'

/**
 * /approvers (governance:admin): register an approver or role authority
 * from the signed inception approver:init wrote, list registered AIDs.
 * Shapes in docs/api.md.
 */
@inject()
export default class ApproversController {
  constructor(private approvers: ApproverService) {}

  /**
   * GET /approvers → `{ data: [approver, …] }`, oldest first
   */
  async index() {
    return { data: await this.approvers.list() }
  }

  /**
   * POST /approvers `{ name, inception, authority?, approval? }` → 201 approver (200 when already registered)
   */
  async store({ request, response, auth }: HttpContext) {
    const { approval, ...body } = await request.validateUsing(registerApproverValidator, {
      data: request.body(),
    })
    const registered = await this.approvers.register(body, {
      approval,
      actor: auth.user?.name ?? 'api',
    })
    response.status(registered.created ? 201 : 200)
    return registered
  }
}
