import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { errors as authErrors } from '@adonisjs/auth'
import { E_FORBIDDEN, E_TOO_MANY_REQUESTS } from '#app/errors'
import type { Ability } from '#app/abilities'
import { AuthThrottle } from '#services/auth_throttle'
import { bearerTokenOf, parseAccessToken } from '#services/access_token_grammar'

/**
 * Authenticates the bearer token (401 E_UNAUTHORIZED_ACCESS without a valid
 * one) and checks the route's ability (403 E_FORBIDDEN without it). Failed
 * attempts that presented a credential count against the client address
 * and the token id; a blocked one answers 429 E_TOO_MANY_REQUESTS with
 * Retry-After before its token is checked. Runs before the body is read.
 */
@inject()
export default class AuthMiddleware {
  constructor(private throttle: AuthThrottle) {}

  /**
   * Runs the check, then the route.
   */
  async handle(ctx: HttpContext, next: NextFn, options: { ability: Ability }) {
    const header = ctx.request.header('authorization')
    const ip = ctx.request.ip()
    const tokenId = parseAccessToken(bearerTokenOf(header))?.id ?? null
    const wait = await this.throttle.retryAfter(ip, tokenId)
    if (wait > 0) {
      ctx.response.header('Retry-After', String(wait))
      throw new E_TOO_MANY_REQUESTS([wait])
    }
    let client
    try {
      client = await ctx.auth.authenticateUsing(['api'])
    } catch (error) {
      if (header !== undefined && error instanceof authErrors.E_UNAUTHORIZED_ACCESS) {
        await this.throttle.recordFailure(ip, tokenId)
      }
      throw error
    }
    if (!client.currentAccessToken.allows(options.ability)) {
      throw new E_FORBIDDEN([options.ability])
    }
    return next()
  }
}
