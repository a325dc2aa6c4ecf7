import app from '@adonisjs/core/services/app'
import { defineConfig } from '@adonisjs/shield'

/**
 * Security headers on every response (@adonisjs/shield). The API answers
 * JSON only, to clients holding bearer tokens: nothing may be framed,
 * sniffed as another type, or load sub-resources. Referrer-Policy and
 * Cache-Control: no-store come from app/middleware/api_headers_middleware.ts
 * (shield has no option for them).
 */
const shieldConfig = defineConfig({
  /** No page of this API loads anything; nobody may frame it. */
  csp: {
    enabled: true,
    directives: {
      defaultSrc: [`'none'`],
      frameAncestors: [`'none'`],
      baseUri: [`'none'`],
      formAction: [`'none'`],
    },
    reportOnly: false,
  },

  /**
   * Off: authentication is a bearer token in a header, never a cookie, so
   * a cross-site request carries no credential to forge with.
   */
  csrf: {
    enabled: false,
  },

  xFrame: {
    enabled: true,
    action: 'DENY',
  },

  /** In production (served over TLS, directly or behind a proxy). */
  hsts: {
    enabled: app.inProduction,
    maxAge: '180 days',
  },

  contentTypeSniffing: {
    enabled: true,
  },
})

export default shieldConfig
