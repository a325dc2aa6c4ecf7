import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'

/**
 * Headers of every API response besides shield's: no cache may keep a
 * response (entries carry plaintext, errors and statuses carry names and
 * ids), no Referer leaves a link, no other origin reads or embeds a
 * response. Set before the route runs, so error responses carry them too.
 */
export default class ApiHeadersMiddleware {
  /**
   * Sets the headers, then continues.
   */
  handle({ response }: HttpContext, next: NextFn) {
    response.header('Cache-Control', 'no-store')
    response.header('Pragma', 'no-cache')
    response.header('Referrer-Policy', 'no-referrer')
    response.header('Cross-Origin-Resource-Policy', 'same-origin')
    response.header('Cross-Origin-Opener-Policy', 'same-origin')
    return next()
  }
}
