import app from '@adonisjs/core/services/app'
import { type HttpContext, ExceptionHandler } from '@adonisjs/core/http'

type ErrorLike = {
  status?: number
  code?: string
  message?: string
  messages?: unknown
}

/**
 * Renders every error as JSON `{ errors: [{ code, message, … }] }` with the
 * error's own status. Unknown errors become a bare 500 without details, so
 * nothing internal (or secret) leaks to clients.
 */
export default class HttpExceptionHandler extends ExceptionHandler {
  protected debug = !app.inProduction

  /**
   * Turns an error into the JSON body and status.
   */
  async handle(error: unknown, ctx: HttpContext) {
    const err = (error ?? {}) as ErrorLike
    const status = typeof err.status === 'number' && err.status >= 400 ? err.status : 500

    if (err.code === 'E_VALIDATION_ERROR' && Array.isArray(err.messages)) {
      return ctx.response.status(422).send({
        errors: (err.messages as Array<Record<string, unknown>>).map((m) => ({
          code: 'E_VALIDATION_ERROR',
          message: m.message,
          field: m.field,
          rule: m.rule,
        })),
      })
    }

    if (status >= 500 && !err.code?.startsWith('E_KMS')) {
      return ctx.response
        .status(500)
        .send({ errors: [{ code: 'E_INTERNAL', message: 'Internal server error' }] })
    }

    return ctx.response.status(status).send({
      errors: [{ code: err.code ?? 'E_HTTP_ERROR', message: err.message ?? 'Request failed' }],
    })
  }

  /**
   * Logs server-side failures; client errors are not worth a log line.
   */
  async report(error: unknown, ctx: HttpContext) {
    return super.report(error, ctx)
  }
}
