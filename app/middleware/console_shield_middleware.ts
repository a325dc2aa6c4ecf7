import app from '@adonisjs/core/services/app'
import edge from 'edge.js'
import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import ShieldMiddleware from '@adonisjs/shield/shield_middleware'

/**
 * Shield for the console's pages (after the session middleware): CSRF on
 * every form (a `_csrf` field checked on POST), and a policy that lets the
 * page load its own stylesheet and script and post its own forms — nothing
 * from another origin, no inline script or style. The JSON API keeps the
 * global shield settings (config/shield.ts: no CSRF, nothing loads).
 */
export default class ConsoleShieldMiddleware {
  #shield: ShieldMiddleware | null = null

  async #instance(): Promise<ShieldMiddleware> {
    if (this.#shield) return this.#shield
    const encryptionManager = await app.container.make('encryption')
    const encryption = encryptionManager.use()
    this.#shield = new ShieldMiddleware(
      {
        csrf: { enabled: true, methods: ['POST', 'PUT', 'PATCH', 'DELETE'] },
        csp: {
          enabled: true,
          directives: {
            defaultSrc: [`'none'`],
            scriptSrc: [`'self'`],
            styleSrc: [`'self'`],
            imgSrc: [`'self'`],
            connectSrc: [`'self'`],
            formAction: [`'self'`],
            frameAncestors: [`'none'`],
            baseUri: [`'none'`],
          },
          reportOnly: false,
        },
        xFrame: { enabled: true, action: 'DENY' },
        hsts: { enabled: app.inProduction, maxAge: '180 days' },
        contentTypeSniffing: { enabled: true },
      },
      encryption,
      edge
    )
    return this.#shield
  }

  /**
   * Runs shield's guards, then continues.
   */
  async handle(ctx: HttpContext, next: NextFn) {
    const shield = await this.#instance()
    return shield.handle(ctx, next)
  }
}
