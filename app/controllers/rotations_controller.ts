import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import type { RotationRun } from '#services/rotation_store'
import { KeyRotationService } from '#services/key_rotation_service'
import { RotationStatusService } from '#services/rotation_status_service'
import { RunTransformer } from '#transformers/run_transformer'
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
  constructor(
    private rotations: KeyRotationService,
    private statusReport: RotationStatusService
  ) {}

  /**
   * GET /rotations/status?kek= → `{ generatedAt, countsAsOf, countsMaxAgeSeconds, keks }`
   */
  async status({ request }: HttpContext) {
    const { kek } = await request.validateUsing(rotationStatusValidator, {
      data: request.qs(),
    })
    return this.statusReport.status(kek)
  }

  /**
   * GET /rotations?kek=&limit= → `{ data: [run, …] }`, newest first
   */
  async index({ request }: HttpContext) {
    const query = await request.validateUsing(listRotationsValidator, { data: request.qs() })
    return { data: await this.#views(await this.rotations.list(query)) }
  }

  /**
   * GET /rotations/:id → run
   */
  async show({ params }: HttpContext) {
    const [view] = await this.#views([await this.rotations.find(String(params.id))])
    return view
  }

  /**
   * POST /rotations → 202 run (running in the background)
   */
  async store({ request, response, auth }: HttpContext) {
    const { kek, ...options } = await request.validateUsing(startRotationValidator, {
      data: request.body(),
    })
    const run = await this.rotations.start(kek, {
      ...options,
      trigger: 'api',
      requestedBy: auth.user?.name ?? null,
    })
    response.status(202)
    return RunTransformer.transform(run)
  }

  /**
   * POST /rotations/:id/cancel → 202 run (stops after its current batch)
   */
  async cancel({ params, response }: HttpContext) {
    const [view] = await this.#views([await this.rotations.cancel(String(params.id))])
    response.status(202)
    return view
  }

  /**
   * Runs as the API shows them, `running` ones checked against the live rotation locks (or
   * chunk leases) and with their last pacing judgement, distributed ones with their chunks
   * per status and per worker.
   */
  async #views(runs: RotationRun[]) {
    const [live, chunks, pacing] = await Promise.all([
      this.rotations.liveKeks(runs),
      this.rotations.chunkStats(runs),
      this.rotations.lastPacing(runs),
    ])
    return RunTransformer.transformMany(runs, live, chunks, pacing)
  }
}
