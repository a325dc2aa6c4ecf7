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
import { Secret } from '@adonisjs/core/helpers'
import db from '@adonisjs/lucid/services/db'
import { AccessToken } from '@adonisjs/auth/access_tokens'
import type { Ability } from '#app/abilities'
import ApiClient from '#models/api_client'
import { Clock } from '#services/clock'
import { parseAccessToken } from '#services/access_token_grammar'

/** Where the model's token provider keeps tokens (`table`, `type` in ApiClient.accessTokens). */
const TOKENS_TABLE = 'auth_access_tokens'
const TOKEN_TYPE = 'auth_token'

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
  constructor(
    private logger?: Logger,
    private clock: Clock = new Clock()
  ) {}

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

  /**
   * The access token `value` names when it is well formed, known, its
   * secret matches (constant-time hash compare) and it has not expired;
   * null otherwise. A malformed value never reaches the database, and
   * `last_used_at` is written only after a successful check.
   */
  async verify(value: string): Promise<AccessToken | null> {
    const parsed = parseAccessToken(value)
    if (!parsed) return null
    const row = await db.from(TOKENS_TABLE).where({ id: parsed.id, type: TOKEN_TYPE }).first()
    if (!row) return null
    const token = new AccessToken({
      identifier: row.id,
      tokenableId: row.tokenable_id,
      type: row.type,
      name: row.name,
      hash: row.hash,
      abilities: JSON.parse(row.abilities),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      lastUsedAt: row.last_used_at,
      expiresAt: row.expires_at,
    })
    if (!token.verify(new Secret(parsed.secret)) || token.isExpired()) return null
    token.lastUsedAt = this.clock.now()
    await db
      .from(TOKENS_TABLE)
      .where({ id: row.id, type: TOKEN_TYPE })
      .update({ last_used_at: token.lastUsedAt })
    return token
  }
}
