import { randomUUID } from 'node:crypto'
import logger from '@adonisjs/core/services/logger'
import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'

/**
 * A request id a client may choose (a UUID, a trace id): letters, digits
 * and `. _ : -`, 1 to 64 characters, starting with a letter or digit.
 */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/

/**
 * Keeps a client's `X-Request-Id` only when it matches
 * {@link REQUEST_ID_PATTERN}; otherwise replaces it with a fresh UUID, in
 * the request (so the response echoes the new one) and in the request's
 * logger. Runs first, before anything logs for the request.
 */
export default class RequestIdMiddleware {
  /**
   * Checks the id, then continues.
   */
  handle(ctx: HttpContext, next: NextFn) {
    const headers = ctx.request.request.headers
    const sent = headers['x-request-id']
    if (typeof sent !== 'string' || !REQUEST_ID_PATTERN.test(sent)) {
      const id = randomUUID()
      headers['x-request-id'] = id
      ctx.logger = logger.child({ request_id: id })
    }
    return next()
  }
}
