import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { ApprovalService } from '#services/approval_service'
import { ApprovalTransformer } from '#transformers/approval_transformer'
import {
  approvalParamsValidator,
  createApprovalValidator,
  listApprovalsValidator,
  signApprovalValidator,
} from '#validators/approval'

/**
 * /approvals: ask for a governed act (rotation:admin), submit an
 * approver's signature over it (approvals:sign; the signature, not the
 * token, is the approval), read where requests stand (rotation:read).
 * Shapes in docs/api.md.
 */
@inject()
export default class ApprovalsController {
  constructor(private approvals: ApprovalService) {}

  /**
   * GET /approvals?state=pending|used|expired&limit= → `{ data: [approval, …] }`, newest first
   */
  async index({ request }: HttpContext) {
    const query = await request.validateUsing(listApprovalsValidator, { data: request.qs() })
    return { data: ApprovalTransformer.transformMany(await this.approvals.list(query)) }
  }

  /**
   * GET /approvals/:said → approval
   */
  async show({ request, params }: HttpContext) {
    const { said } = await request.validateUsing(approvalParamsValidator, { data: params })
    return ApprovalTransformer.transform(await this.approvals.status(said))
  }

  /**
   * POST /approvals `{ action, kek, params?, expiresIn? }` → 201 approval
   */
  async store({ request, response, auth }: HttpContext) {
    const body = await request.validateUsing(createApprovalValidator, { data: request.body() })
    const status = await this.approvals.create({
      action: body.action,
      kek: body.kek,
      params: body.params ?? {},
      expiresInMs: body.expiresIn,
      requester: auth.user?.name ?? 'api',
    })
    response.status(201)
    return ApprovalTransformer.transform(status)
  }

  /**
   * POST /approvals/:said/signatures `{ signature: { i, s, d, sigs } }` → 201 approval
   */
  async sign({ request, response, params }: HttpContext) {
    const { said } = await request.validateUsing(approvalParamsValidator, { data: params })
    const { signature } = await request.validateUsing(signApprovalValidator, {
      data: request.body(),
    })
    const status = await this.approvals.sign(said, signature, signature.i)
    response.status(201)
    return ApprovalTransformer.transform(status)
  }
}
