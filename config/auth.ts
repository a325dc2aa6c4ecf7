import { defineConfig } from '@adonisjs/auth'
import { tokensGuard } from '@adonisjs/auth/access_tokens'
import type { InferAuthenticators, InferAuthEvents, Authenticators } from '@adonisjs/auth/types'
import { StrictTokensUserProvider } from '#app/auth/strict_tokens_user_provider'

/**
 * Bearer access tokens with abilities, owned by API clients (service
 * accounts created with `node ace token:create`).
 */
const authConfig = defineConfig({
  default: 'api',
  guards: {
    api: tokensGuard({
      // Verification through TokenService.verify (strict grammar, no query
      // for malformed tokens, last_used_at only on success).
      provider: new StrictTokensUserProvider({
        tokens: 'accessTokens',
        model: () => import('#models/api_client'),
      }),
    }),
  },
})

export default authConfig

declare module '@adonisjs/auth/types' {
  export interface Authenticators extends InferAuthenticators<typeof authConfig> {}
}
declare module '@adonisjs/core/types' {
  interface EventsList extends InferAuthEvents<Authenticators> {}
}
