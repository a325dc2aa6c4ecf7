import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { HealthService } from '#services/health_service'

/**
 * GET /health/ready: readiness (database, KMS, a round trip per KEK).
 */
@inject()
export default class HealthController {
  constructor(private health: HealthService) {}

  /**
   * 200 with the report when every check passes, 503 with it otherwise.
   */
  async ready({ response }: HttpContext) {
    const report = await this.health.ready()
    return response.status(report.isHealthy ? 200 : 503).send(report)
  }
}
