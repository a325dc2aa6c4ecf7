import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { E_CONSOLE_SIGN_IN_REFUSED, E_TOO_MANY_REQUESTS } from '#app/errors'
import { CONSOLE_SIGN_IN_KEY } from '#middleware/console_auth_middleware'
import { AuthThrottle } from '#services/auth_throttle'
import { ConsoleSignIns } from '#services/console_sign_ins'
import { parseAccessToken } from '#services/access_token_grammar'
import { TokenService } from '#services/token_service'
import { consoleSignInValidator } from '#validators/console'

/**
 * The console's sign-in and sign-out: an access token pasted once is
 * exchanged for a sign-in held on the server (ConsoleSignIns), which the
 * session names by a random handle (never the token). Sign-out ends the
 * sign-in there, not only in this browser. Failed sign-ins count against
 * the same throttle as failed bearer tokens.
 */
@inject()
export default class ConsoleSessionController {
  constructor(
    private tokens: TokenService,
    private throttle: AuthThrottle,
    private signIns: ConsoleSignIns
  ) {}

  /**
   * GET /console/sign-in → the form
   */
  async create({ view, response }: HttpContext) {
    response.header('Content-Type', 'text/html; charset=utf-8')
    return view.render('console/sign_in', { error: null })
  }

  /**
   * POST /console/sign-in (token, _csrf) → 303 /console, or the form again
   * with the refusal (401, 422 or 429)
   */
  async store(ctx: HttpContext) {
    const { request, response, session, view } = ctx
    const refuse = (status: number, error: { code?: string; message: string }) => {
      response.status(status).header('Content-Type', 'text/html; charset=utf-8')
      return view.render('console/sign_in', { error: `${error.code}: ${error.message}` })
    }
    const [invalid, input] = await consoleSignInValidator.tryValidate(request.body())
    if (invalid) return refuse(422, { code: 'E_VALIDATION_ERROR', message: 'Paste a token' })
    const ip = request.ip()
    const tokenId = parseAccessToken(input.token)?.id ?? null
    const wait = await this.throttle.retryAfter(ip, tokenId)
    if (wait > 0) {
      response.header('Retry-After', String(wait))
      return refuse(429, new E_TOO_MANY_REQUESTS([wait]))
    }
    const token = await this.tokens.verify(input.token)
    if (!token || !token.allows('rotation:read')) {
      if (!token) await this.throttle.recordFailure(ip, tokenId)
      return refuse(401, new E_CONSOLE_SIGN_IN_REFUSED())
    }
    // A sign-in over a live one ends it first (regenerate keeps the session's data: the old
    // handle would stay valid for every copy of the old cookie), then a fresh session id: a
    // session fixed before sign-in is worth nothing.
    await this.signIns.end(session.get(CONSOLE_SIGN_IN_KEY))
    const handle = await this.signIns.start(String(token.identifier))
    if (handle === null) return refuse(401, new E_CONSOLE_SIGN_IN_REFUSED())
    session.regenerate()
    session.put(CONSOLE_SIGN_IN_KEY, handle)
    return response.redirect().status(303).toPath('/console')
  }

  /**
   * POST /console/sign-out (_csrf) → 303 /console/sign-in
   */
  async destroy({ session, response }: HttpContext) {
    await this.signIns.end(session.get(CONSOLE_SIGN_IN_KEY))
    session.clear()
    session.regenerate()
    return response.redirect().status(303).toPath('/console/sign-in')
  }
}
