import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { E_FORBIDDEN } from '#app/errors'
import { HealthService } from '#services/health_service'

/**
 * GET /health/ready: readiness (database, KMS, a round trip per KEK).
 */
@inject()
export default class HealthController {
  constructor(private health: HealthService) {}

  /**
   * 200 when every check passes, 503 otherwise. Without a token the body is
   * the overall status only (`{ status: "ok" | "error" }`: for load
   * balancers); with a bearer token carrying `rotation:read` the full
   * report. A token that is invalid answers 401, one without the ability 403.
   */
  async ready(ctx: HttpContext) {
    const detailed = ctx.request.header('authorization') !== undefined
    if (detailed) {
      const client = await ctx.auth.authenticateUsing(['api'])
      if (!client.currentAccessToken.allows('rotation:read')) {
        throw new E_FORBIDDEN(['rotation:read'])
      }
    }
    const report = await this.health.ready()
    ctx.response.status(report.isHealthy ? 200 : 503)
    return detailed ? report : { status: report.isHealthy ? 'ok' : 'error' }
  }
}
