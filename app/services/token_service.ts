/*
|--------------------------------------------------------------------------
| Token service
|--------------------------------------------------------------------------
|
| API clients (service accounts) and their bearer access tokens. The token
| value exists in clear only in the result of `create` (it is stored
| hashed); it is never logged.
|
*/
import { inject } from '@adonisjs/core'
import { Logger } from '@adonisjs/core/logger'
import type { Ability } from '#app/abilities'
import ApiClient from '#models/api_client'

/** Input of {@link TokenService.create} (validated by createTokenValidator). */
export interface CreateTokenInput {
  name: string
  abilities: Ability[]
  /** Lifetime such as `30d`; none = never expires. */
  expiresIn?: string
}

/** A freshly created token: the only time its value is visible. */
export interface CreatedToken {
  clientId: number
  tokenId: string
  name: string
  abilities: Ability[]
  expiresAt: string | null
  /** The bearer token (secret). */
  token: string
}

/**
 * Creates API clients and their access tokens.
 */
@inject()
export class TokenService {
  constructor(private logger?: Logger) {}

  /**
   * Creates an API client named `name` and one access token for it with
   * `abilities`.
   */
  async create(input: CreateTokenInput): Promise<CreatedToken> {
    const client = await ApiClient.create({ name: input.name })
    try {
      const token = await ApiClient.accessTokens.create(client, input.abilities, {
        name: input.name,
        expiresIn: input.expiresIn,
      })
      const tokenId = String(token.identifier)
      const expiresAt = token.expiresAt ? token.expiresAt.toISOString() : null
      this.logger?.info(
        { clientId: client.id, tokenId, abilities: input.abilities, expiresAt },
        'access token created'
      )
      return {
        clientId: client.id,
        tokenId,
        name: input.name,
        abilities: input.abilities,
        expiresAt,
        token: token.value!.release(),
      }
    } catch (error) {
      await client.delete()
      throw error
    }
  }
}
