import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { MetricsService } from '#services/metrics_service'

/**
 * GET /metrics: Prometheus text exposition format.
 */
@inject()
export default class MetricsController {
  constructor(private metrics: MetricsService) {}

  /**
   * Renders every metric (gauges computed now).
   */
  async show({ response }: HttpContext) {
    const body = await this.metrics.render()
    response.header('content-type', this.metrics.contentType)
    return response.send(body)
  }
}
