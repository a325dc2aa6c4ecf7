import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { E_FORBIDDEN } from '#app/errors'
import type { Ability } from '#app/abilities'

/**
 * Authenticates the bearer token (401 E_UNAUTHORIZED_ACCESS without a valid
 * one) and checks the route's ability (403 E_FORBIDDEN without it).
 */
export default class AuthMiddleware {
  /**
   * Runs the check, then the route.
   */
  async handle(ctx: HttpContext, next: NextFn, options: { ability: Ability }) {
    const client = await ctx.auth.authenticateUsing(['api'])
    if (!client.currentAccessToken.allows(options.ability)) {
      throw new E_FORBIDDEN([options.ability])
    }
    return next()
  }
}
