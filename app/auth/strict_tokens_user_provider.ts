import app from '@adonisjs/core/services/app'
import type { Secret } from '@adonisjs/core/helpers'
import type { AccessToken } from '@adonisjs/auth/access_tokens'
import { AccessTokensLucidUserProvider } from '@adonisjs/auth/access_tokens'
import type { LucidTokenable } from '@adonisjs/auth/types/access_tokens'

let tokenServiceModule: Promise<typeof import('#services/token_service')> | undefined

/**
 * The tokens guard's user provider, with token verification done by
 * `TokenService.verify`: the strict token grammar before any query,
 * and `last_used_at` written only on success (the stock provider queries
 * with whatever id the client sent and writes `last_used_at` before it
 * compares the secret).
 */
export class StrictTokensUserProvider<
  TokenableProperty extends string,
  UserModel extends LucidTokenable<TokenableProperty>,
> extends AccessTokensLucidUserProvider<TokenableProperty, UserModel> {
  /**
   * Verifies a bearer token; null when it is not a valid one.
   */
  async verifyToken(tokenValue: Secret<string>): Promise<AccessToken | null> {
    // Imported on first use (config/auth.ts loads this file before the app boots), then
    // kept: a dynamic import per request goes through the module loader every time.
    tokenServiceModule ??= import('#services/token_service')
    const { TokenService } = await tokenServiceModule
    const tokens = await app.container.make(TokenService)
    return tokens.verify(tokenValue.release())
  }
}
