import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import app from '@adonisjs/core/services/app'
import { ConsoleService } from '#services/console_service'
import { KeyRotationService } from '#services/key_rotation_service'
import { ReencryptService } from '#services/reencrypt_service'
import { humanSeconds } from '#transformers/console_transformer'

/**
 * The operator console: the page (rotation:read), its live poll, and the
 * one act it offers, cancelling a run — a rotation or a re-encrypt
 * (rotation:admin), through the service the JSON API's cancel uses.
 */
@inject()
export default class ConsoleController {
  constructor(
    private console: ConsoleService,
    private rotations: KeyRotationService,
    private reencrypts: ReencryptService
  ) {}

  /**
   * GET /console → the page
   */
  async index({ view, response, consoleViewer, session }: HttpContext) {
    const page = await this.console.page()
    const abilities = new Set(consoleViewer!.abilities)
    response.header('Content-Type', 'text/html; charset=utf-8')
    return view.render('console/index', {
      page,
      viewer: consoleViewer,
      canAdmin: abilities.has('rotation:admin'),
      notice: session.flashMessages.get('notice') ?? null,
      humanSeconds,
      pollMs: app.config.get<number>('rewrap.console.pollMs', 1000),
    })
  }

  /**
   * GET /console/live → `{ generatedAt, running: [run, …], runningReencrypts: [run, …] }`
   * (the page polls it)
   */
  live() {
    return this.console.live()
  }

  /**
   * POST /console/runs/:id/cancel (_csrf) → 303 /console (the run stops after its batch)
   */
  async cancel({ params, response, session }: HttpContext) {
    const run = await this.rotations.cancel(String(params.id))
    session.flash('notice', `Cancel requested for run #${run.id} (${run.kekName}).`)
    return response.redirect().status(303).toPath('/console')
  }

  /**
   * POST /console/reencrypts/:id/cancel (_csrf) → 303 /console (the run stops after its
   * batch, resumable: `POST /reencrypts/:id/cancel`'s act)
   */
  async cancelReencrypt({ params, response, session }: HttpContext) {
    const run = await this.reencrypts.cancel(String(params.id))
    session.flash(
      'notice',
      `Cancel requested for re-encrypt #${run.id} (${run.fromKek} → ${run.toKek}).`
    )
    return response.redirect().status(303).toPath('/console')
  }
}
