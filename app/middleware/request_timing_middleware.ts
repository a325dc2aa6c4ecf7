import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import type { NextFn } from '@adonisjs/core/types/http'
import { RequestLatencyRecorder } from '#services/request_latency_recorder'

/** Paths left out of the foreground latency (scrapes and probes, not the app's traffic). */
const UNTIMED = /^\/(metrics|health)(\/|$)/

/**
 * Times every request (until its response is sent) for the latency budget
 * of background runs (app/services/request_latency_recorder.ts).
 */
@inject()
export default class RequestTimingMiddleware {
  constructor(private recorder: RequestLatencyRecorder) {}

  /**
   * Records the request's duration once its response has finished.
   */
  handle(ctx: HttpContext, next: NextFn) {
    if (UNTIMED.test(ctx.request.url())) return next()
    const started = process.hrtime.bigint()
    ctx.response.response.once('finish', () => {
      this.recorder.record(Number(process.hrtime.bigint() - started) / 1e6)
    })
    return next()
  }
}
