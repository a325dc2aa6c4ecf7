import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { E_ENTRY_NOT_FOUND, E_REENCRYPT_NOT_FOUND, E_ROTATION_NOT_FOUND } from '#app/errors'
import { idParamsValidator, shownId } from '#validators/id'

/** What the `:id` of a route names (picks the 404 code). */
export type IdResource = 'entry' | 'rotation' | 'reencrypt'

/**
 * Validates the route's `:id` as a positive bigint (1 to 2^63-1) and puts
 * its canonical form in `params.id`. An id that cannot exist is the same
 * 404 as an unknown one (E_ENTRY_NOT_FOUND / E_ROTATION_NOT_FOUND /
 * E_REENCRYPT_NOT_FOUND), decided
 * before any query: PostgreSQL would refuse it (bigint out of range).
 */
export default class BigintIdMiddleware {
  /**
   * Validates, then continues.
   */
  async handle(ctx: HttpContext, next: NextFn, options: { resource: IdResource }) {
    const [error, result] = await idParamsValidator.tryValidate({ id: ctx.params.id })
    if (error) {
      const shown = shownId(ctx.params.id)
      if (options.resource === 'entry') throw new E_ENTRY_NOT_FOUND([shown])
      if (options.resource === 'reencrypt') throw new E_REENCRYPT_NOT_FOUND([shown])
      throw new E_ROTATION_NOT_FOUND([shown])
    }
    ctx.params.id = result.id
    return next()
  }
}
