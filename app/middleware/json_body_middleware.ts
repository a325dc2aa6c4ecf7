import app from '@adonisjs/core/services/app'
import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import type { JsonBodyConfig } from '#config/bodyparser'
import { assertJsonMediaType, hasBody, parseJsonBody, readBodyText } from '#app/http/json_body'

/**
 * Reads the JSON body of a write route. Runs after `auth` on each write
 * route, so an unauthenticated request never has its body read. A body
 * must be `application/json` (415 E_UNSUPPORTED_MEDIA_TYPE otherwise); no
 * body is an empty object. Limits in config/bodyparser.ts.
 */
export default class JsonBodyMiddleware {
  /**
   * Reads and parses, then continues.
   */
  async handle({ request }: HttpContext, next: NextFn) {
    const config = app.config.get<JsonBodyConfig>('bodyparser.json')
    const req = request.request
    if (!hasBody(req)) {
      request.setInitialBody({})
      return next()
    }
    assertJsonMediaType(request.header('content-type'))
    const text = await readBodyText(req, config)
    request.setInitialBody(parseJsonBody(text, config.maxDepth))
    return next()
  }
}
