import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import type { Ability } from '#app/abilities'
import { E_FORBIDDEN } from '#app/errors'
import { TokenService } from '#services/token_service'

/** The session key holding the signed-in token's id (never the token). */
export const CONSOLE_TOKEN_KEY = 'console_token_id'

/** Who is signed in to the console: the token's id, name and abilities. */
export interface ConsoleViewer {
  tokenId: string
  name: string | null
  abilities: string[]
}

declare module '@adonisjs/core/http' {
  interface HttpContext {
    /** Set by ConsoleAuthMiddleware on console routes. */
    consoleViewer?: ConsoleViewer
  }
}

/**
 * Console routes: the session must name a token that still exists and has
 * not expired (re-read on every request: revoking the token ends its
 * sessions), else the browser is sent to the sign-in page. The route's
 * ability is then checked against the token's (403 E_FORBIDDEN).
 */
@inject()
export default class ConsoleAuthMiddleware {
  constructor(private tokens: TokenService) {}

  /**
   * Checks the session, then continues.
   */
  async handle(ctx: HttpContext, next: NextFn, options: { ability: Ability }) {
    const id = ctx.session.get(CONSOLE_TOKEN_KEY)
    const token = typeof id === 'string' ? await this.tokens.active(id) : null
    if (!token) {
      if (id !== undefined) ctx.session.forget(CONSOLE_TOKEN_KEY)
      return ctx.response.redirect('/console/sign-in')
    }
    if (!token.allows(options.ability)) throw new E_FORBIDDEN([options.ability])
    ctx.consoleViewer = {
      tokenId: String(token.identifier),
      name: token.name,
      abilities: [...token.abilities],
    }
    return next()
  }
}
