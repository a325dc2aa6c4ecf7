/*
|--------------------------------------------------------------------------
| Auth helpers (tests)
|--------------------------------------------------------------------------
*/
import app from '@adonisjs/core/services/app'
import type { Ability } from '#app/abilities'
import { TokenService } from '#services/token_service'
import { rememberToken } from '#tests/helpers/secrets'

/**
 * Creates an API client with a token carrying `abilities` (through the
 * same service `token:create` uses) and returns the bearer token. The token
 * is remembered as a secret for the log audit.
 */
export async function createToken(
  abilities: Ability[],
  options: { name?: string; expiresIn?: string } = {}
): Promise<string> {
  const tokens = await app.container.make(TokenService)
  const created = await tokens.create({
    name: options.name ?? `test-${abilities.join('+') || 'none'}`,
    abilities,
    expiresIn: options.expiresIn,
  })
  rememberToken(created.token)
  return created.token
}

/**
 * A token with every entries ability.
 */
export function entriesToken(): Promise<string> {
  return createToken(['entries:read', 'entries:write'])
}
