import app from '@adonisjs/core/services/app'
import { type HttpContext, ExceptionHandler } from '@adonisjs/core/http'
import { isDatabaseUnavailable } from '#services/database_outage'

type ErrorLike = {
  status?: number
  code?: string
  message?: string
  messages?: unknown
}

/** One item of an error body. */
export interface ErrorItem {
  code: string
  message: string
  field?: string
  rule?: string
}

/** An error as clients see it: a status and `{ errors }`. */
export interface RenderedError {
  status: number
  errors: ErrorItem[]
}

/** What a client is told while the database cannot be reached (no host, no driver text). */
const DATABASE_DOWN = 'The database is unavailable; try again later'

const INTERNAL: RenderedError = {
  status: 500,
  errors: [{ code: 'E_INTERNAL', message: 'Internal server error' }],
}

/**
 * Maps any thrown value to the status and error items a client may see.
 *
 * Only Rewrap's own `E_*` errors and the framework's client errors keep
 * their message (those never carry secrets). Bodies are read by
 * app/http/json_body.ts, which throws only `E_*` errors with fixed messages
 * (never the JSON parser's, which quotes the body). Any other failure is a
 * bare 500.
 */
export function renderError(error: unknown): RenderedError {
  if (typeof error !== 'object' || error === null) return INTERNAL
  const err = error as ErrorLike
  const status = typeof err.status === 'number' && err.status >= 400 ? err.status : 500

  if (err.code === 'E_VALIDATION_ERROR' && Array.isArray(err.messages)) {
    return {
      status: 422,
      errors: (err.messages as Array<Record<string, unknown>>).map((m) => ({
        code: 'E_VALIDATION_ERROR',
        message: String(m.message),
        field: m.field === undefined ? undefined : String(m.field),
        rule: m.rule === undefined ? undefined : String(m.rule),
      })),
    }
  }

  if (err.code === 'E_ROUTE_NOT_FOUND') {
    return { status: 404, errors: [{ code: 'E_ROUTE_NOT_FOUND', message: 'Route not found' }] }
  }

  // PostgreSQL down, restarting or failing over: retryable, not an internal error.
  if (err.code === 'E_DATABASE_UNAVAILABLE' || isDatabaseUnavailable(error)) {
    return { status: 503, errors: [{ code: 'E_DATABASE_UNAVAILABLE', message: DATABASE_DOWN }] }
  }

  if (status >= 500 && !err.code?.startsWith('E_KMS')) return INTERNAL

  return {
    status,
    errors: [{ code: err.code ?? 'E_HTTP_ERROR', message: err.message ?? 'Request failed' }],
  }
}

/**
 * One line for the console (Ace commands): `CODE: message`, validation
 * errors joined. Operators see the message of unexpected errors too.
 */
export function errorLine(error: unknown): string {
  if (typeof error !== 'object' || error === null) return `E_INTERNAL: ${String(error)}`
  const err = error as ErrorLike
  if (err.code === 'E_VALIDATION_ERROR' && Array.isArray(err.messages)) {
    const parts = (err.messages as Array<Record<string, unknown>>).map((m) => String(m.message))
    return `E_VALIDATION_ERROR: ${parts.join('; ')}`
  }
  return `${err.code ?? 'E_INTERNAL'}: ${err.message ?? 'failed'}`
}

/**
 * Renders every error as JSON `{ errors: [{ code, message, … }] }` with the
 * error's own status. Unknown errors become a bare 500 without details, so
 * nothing internal (or secret) leaks to clients.
 */
export default class HttpExceptionHandler extends ExceptionHandler {
  protected debug = !app.inProduction

  /**
   * Statuses not worth a log line (malformed requests, missing tokens).
   */
  protected ignoreStatuses = [400, 401]

  /**
   * Turns an error into the JSON body and status.
   */
  async handle(error: unknown, ctx: HttpContext) {
    const { status, errors } = renderError(error)
    return ctx.response.status(status).send({ errors })
  }

  /**
   * Logs refusals and failures with their code and status only (unknown
   * failures also with the error's type, message and stack). Never the
   * error object itself: some carry the request body (the JSON parser's
   * does). Tampered ciphertexts (422 E_CIPHERTEXT_INVALID) are logged:
   * they are worth an operator's attention, unlike validation errors.
   */
  async report(error: unknown, ctx: HttpContext) {
    const { status, errors } = renderError(error)
    const code = errors[0]?.code
    if (
      this.ignoreStatuses.includes(status) ||
      code === 'E_VALIDATION_ERROR' ||
      code === 'E_ROUTE_NOT_FOUND'
    ) {
      return
    }
    const message = errors[0]?.message ?? 'request failed'
    if (status < 500) {
      ctx.logger.warn({ status, code }, message)
      return
    }
    if (code !== 'E_INTERNAL') {
      ctx.logger.error({ status, code }, message)
      return
    }
    const err = (typeof error === 'object' && error !== null ? error : {}) as Error & ErrorLike
    ctx.logger.error(
      {
        status,
        code,
        err: {
          type: err.constructor?.name ?? typeof error,
          code: err.code,
          message: err.message ?? String(error),
          stack: err.stack,
        },
      },
      'request failed'
    )
  }
}
