import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'

/**
 * The API speaks only JSON: errors are rendered as JSON whatever the
 * client's Accept header says.
 */
export default class ForceJsonResponseMiddleware {
  /**
   * Sets Accept, then continues.
   */
  async handle({ request }: HttpContext, next: NextFn) {
    const headers = request.headers()
    headers.accept = 'application/json'
    return next()
  }
}
