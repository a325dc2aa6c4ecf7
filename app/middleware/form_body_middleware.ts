import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { E_UNSUPPORTED_MEDIA_TYPE } from '#app/errors'
import { hasBody, readBodyText } from '#app/http/json_body'

/** The console's forms carry a token and a CSRF field at most. */
const FORM_LIMIT = { limitBytes: 8 * 1024, maxDepth: 1, encodings: ['identity' as const] }

/**
 * Reads a console form (`application/x-www-form-urlencoded`, at most 8 KB)
 * into the request body as flat string fields; any other media type is
 * 415 E_UNSUPPORTED_MEDIA_TYPE. Runs before shield's CSRF check, which
 * reads the form's `_csrf` field.
 */
export default class FormBodyMiddleware {
  /**
   * Reads and parses, then continues.
   */
  async handle({ request }: HttpContext, next: NextFn) {
    const req = request.request
    const fields: Record<string, string> = Object.create(null)
    if (hasBody(req)) {
      const type = (request.header('content-type') ?? '').split(';')[0].trim().toLowerCase()
      if (type !== 'application/x-www-form-urlencoded') {
        throw new E_UNSUPPORTED_MEDIA_TYPE(['send a form (application/x-www-form-urlencoded)'])
      }
      for (const [key, value] of new URLSearchParams(await readBodyText(req, FORM_LIMIT))) {
        fields[key] = value
      }
    }
    request.setInitialBody({ ...fields })
    return next()
  }
}
