import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import type { Ability } from '#app/abilities'
import { E_FORBIDDEN } from '#app/errors'
import { ConsoleSignIns } from '#services/console_sign_ins'
import { TokenService } from '#services/token_service'

/**
 * The session key holding the sign-in's handle (ConsoleSignIns): neither
 * the token nor its id, and worth nothing once the sign-in has ended.
 */
export const CONSOLE_SIGN_IN_KEY = 'console_sign_in'

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
 * Console routes: the session must name a sign-in that has not ended
 * (signed out, or past its lifetime) for a token that still exists and has
 * not expired (both re-read on every request: signing out or revoking the
 * token ends the session at once), else the browser is sent to the
 * sign-in page. The route's
 * ability is then checked against the token's (403 E_FORBIDDEN).
 */
@inject()
export default class ConsoleAuthMiddleware {
  constructor(
    private signIns: ConsoleSignIns,
    private tokens: TokenService
  ) {}

  /**
   * Checks the session, then continues.
   */
  async handle(ctx: HttpContext, next: NextFn, options: { ability: Ability }) {
    const handle = ctx.session.get(CONSOLE_SIGN_IN_KEY)
    const id = handle === undefined ? null : await this.signIns.tokenOf(handle)
    const token = id === null ? null : await this.tokens.active(id)
    if (!token) {
      if (handle !== undefined) ctx.session.forget(CONSOLE_SIGN_IN_KEY)
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
