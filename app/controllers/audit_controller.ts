import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { AuditService } from '#services/audit_service'
import { listAuditValidator } from '#validators/audit'

/**
 * /audit: the signed audit trail, paged (rotation:read). Shapes in docs/auditing.md.
 */
@inject()
export default class AuditController {
  constructor(private audit: AuditService) {}

  /**
   * GET /audit?after=&limit= → `{ data: [{ seq, record, signature }, …], next }`;
   * `next` is the `after` of the following page, null on the last page.
   */
  async index({ request }: HttpContext) {
    const { after = -1, limit = 100 } = await request.validateUsing(listAuditValidator, {
      data: request.qs(),
    })
    const data = await this.audit.page(after, limit)
    return { data, next: data.length === limit ? data[data.length - 1].seq : null }
  }
}
