/*
|--------------------------------------------------------------------------
| Malformed request URLs
|--------------------------------------------------------------------------
|
| A path the HTTP server cannot percent-decode (`/entries/%ED%A0%80`: not
| UTF-8) never reaches the middleware pipeline; the framework's default
| answers `400 Bad Request` as plain text. This answers the API's error
| shape and headers instead (config/app.ts `onBadUrl`).
|
*/
import type { IncomingMessage, ServerResponse } from 'node:http'
import { E_MALFORMED_URL } from '#app/errors'

/**
 * Answers `400 { errors: [{ code: "E_MALFORMED_URL", message }] }`.
 */
export function onBadUrl(_req: IncomingMessage, res: ServerResponse) {
  const error = new E_MALFORMED_URL()
  const body = JSON.stringify({ errors: [{ code: error.code, message: error.message }] })
  res.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'pragma': 'no-cache',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  })
  res.end(body)
}
