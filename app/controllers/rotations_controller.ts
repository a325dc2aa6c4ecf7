import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { RotationStatusService } from '#services/rotation_status_service'
import {
  listRotationsValidator,
  rotationStatusValidator,
  startRotationValidator,
} from '#validators/rotation_api'

/**
 * /rotations: status for dashboards, run list and detail (rotation:read),
 * start and cancel (rotation:admin). Shapes in docs/api.md.
 */
@inject()
export default class RotationsController {
  constructor(private rotations: RotationStatusService) {}

  /**
   * GET /rotations/status?kek= → `{ generatedAt, countsAsOf, countsMaxAgeSeconds, keks }`
   */
  async status({ request }: HttpContext) {
    const { kek } = await request.validateUsing(rotationStatusValidator, {
      data: request.qs(),
    })
    return this.rotations.status(kek)
  }

  /**
   * GET /rotations?kek=&limit= → `{ data: [run, …] }`, newest first
   */
  async index({ request }: HttpContext) {
    const query = await request.validateUsing(listRotationsValidator, { data: request.qs() })
    return { data: await this.rotations.list(query) }
  }

  /**
   * GET /rotations/:id → run
   */
  async show({ params }: HttpContext) {
    return this.rotations.show(String(params.id))
  }

  /**
   * POST /rotations → 202 run (running in the background)
   */
  async store({ request, response, auth }: HttpContext) {
    const input = await request.validateUsing(startRotationValidator, { data: request.body() })
    const run = await this.rotations.start(input, auth.user?.name ?? null)
    response.status(202)
    return run
  }

  /**
   * POST /rotations/:id/cancel → 202 run (stops after its current batch)
   */
  async cancel({ params, response }: HttpContext) {
    const run = await this.rotations.cancel(String(params.id))
    response.status(202)
    return run
  }
}
