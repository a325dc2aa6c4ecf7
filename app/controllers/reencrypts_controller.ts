import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { ReencryptService, type ReencryptRun } from '#services/reencrypt_service'
import { ReencryptRunTransformer } from '#transformers/reencrypt_run_transformer'
import { listReencryptsValidator } from '#validators/lifecycle'

/**
 * /reencrypts: re-encrypt runs (started by `node ace reencrypt`), list and
 * detail (rotation:read), cancel (rotation:admin). Shapes in docs/api.md.
 */
@inject()
export default class ReencryptsController {
  constructor(private reencrypts: ReencryptService) {}

  /**
   * GET /reencrypts?from=&limit= → `{ data: [run, …] }`, newest first
   */
  async index({ request }: HttpContext) {
    const query = await request.validateUsing(listReencryptsValidator, { data: request.qs() })
    return { data: await this.#views(await this.reencrypts.list(query)) }
  }

  /**
   * GET /reencrypts/:id → run
   */
  async show({ params }: HttpContext) {
    const [view] = await this.#views([await this.reencrypts.find(String(params.id))])
    return view
  }

  /**
   * POST /reencrypts/:id/cancel → 202 run (stops after its current batch)
   */
  async cancel({ params, response }: HttpContext) {
    const [view] = await this.#views([await this.reencrypts.cancel(String(params.id))])
    response.status(202)
    return view
  }

  /**
   * Runs as the API shows them, `running` ones checked against the live re-encrypt locks and
   * with their last pacing judgement.
   */
  async #views(runs: ReencryptRun[]) {
    const [live, pacing] = await Promise.all([
      this.reencrypts.liveSources(runs),
      this.reencrypts.lastPacing(runs),
    ])
    return ReencryptRunTransformer.transformMany(runs, live, pacing)
  }
}
