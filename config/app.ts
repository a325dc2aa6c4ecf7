import env from '#start/env'
import app from '@adonisjs/core/services/app'
import { defineConfig } from '@adonisjs/core/http'
import type { NodeServerTimeouts } from '#app/http/node_server'
import { onBadUrl } from '#app/http/bad_url'

/**
 * The app key signs and encrypts framework values (cookies, etc.). It is
 * generated into .env by `npm start` on first run.
 */
export const appKey = env.get('APP_KEY')

/**
 * Time limits of the HTTP server, in milliseconds (Node's defaults let a
 * client hold a socket 300 s with a body it never finishes): the whole
 * request (headers and a body of up to 1 MB) within 30 s, the headers
 * within 10 s, idle keep-alive connections closed after 5 s; Node checks
 * them every second (bin/server.ts).
 */
export const serverTimeouts: NodeServerTimeouts = {
  requestTimeout: 30_000,
  headersTimeout: 10_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
}

/**
 * HTTP server settings.
 */
export const http = defineConfig({
  generateRequestId: true,
  requestTimeout: serverTimeouts.requestTimeout,
  headersTimeout: serverTimeouts.headersTimeout,
  keepAliveTimeout: serverTimeouts.keepAliveTimeout,
  allowMethodSpoofing: false,
  useAsyncLocalStorage: false,
  // A URL that cannot be percent-decoded: the API's JSON error, not a plain-text 400.
  onBadUrl,
  cookie: {
    domain: '',
    path: '/',
    maxAge: '2h',
    httpOnly: true,
    secure: app.inProduction,
    sameSite: 'lax',
  },
})
