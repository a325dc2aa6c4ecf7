import app from '@adonisjs/core/services/app'
import { defineConfig, stores } from '@adonisjs/session'

/**
 * Sessions of the operator console only (the JSON API takes bearer tokens
 * and never sets a cookie: the session middleware runs on /console routes
 * alone). The session holds the handle of a sign-in kept on the server
 * (ConsoleSignIns) and shield's CSRF secret, encrypted with APP_KEY in an
 * http-only, SameSite=Strict cookie; never the token itself. Each request
 * re-reads the sign-in and its token, so sign-out, a revoked or an expired
 * token ends the console session at once, for every copy of the cookie.
 */
const sessionConfig = defineConfig({
  enabled: true,
  cookieName: 'rewrap_console',
  /** Ends with the browser; at most two hours of inactivity. */
  clearWithBrowser: true,
  age: '2h',
  cookie: {
    path: '/console',
    httpOnly: true,
    secure: app.inProduction,
    sameSite: 'strict',
  },
  store: 'cookie',
  stores: {
    cookie: stores.cookie(),
  },
})

export default sessionConfig
