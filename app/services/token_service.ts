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
import { AccessToken } from '@adonisjs/auth/access_tokens'
import type { Ability } from '#app/abilities'
import db from '@adonisjs/lucid/services/db'
import ApiClient from '#models/api_client'
import { E_TOKEN_NOT_FOUND } from '#app/errors'
import { Clock } from '#services/clock'
import { withAuditRecord } from '#services/audit_service'
import { parseAccessToken } from '#services/access_token_grammar'

/** Where the model's token provider keeps tokens (`table`, `type` in ApiClient.accessTokens). */
const TOKENS_TABLE = 'auth_access_tokens'
const TOKEN_TYPE = 'auth_token'

/**
 * How fresh `last_used_at` is kept, ms. A token's last use is written when
 * the stored one is older than this (or missing), not on every request: a
 * write per authenticated read made every GET a commit waiting on the WAL
 * flush, and serialised every concurrent request of one token on its row
 * lock — a foreground cost that grew with any other write load (a running
 * rotation's), for a timestamp operators read at minute precision.
 */
export const LAST_USED_RESOLUTION_MS = 60_000

/** Whether a token last stamped at `lastUsedAt` is due a new stamp at `now`. */
export function lastUseIsStale(lastUsedAt: Date | null | undefined, now: Date): boolean {
  if (!lastUsedAt) return true
  const age = now.getTime() - lastUsedAt.getTime()
  return !(age >= 0 && age < LAST_USED_RESOLUTION_MS)
}

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

/** One access token as `token:list` shows it (never its value or hash). */
export interface TokenSummary {
  tokenId: string
  clientId: number
  /** The API client's name. */
  clientName: string
  /** The token's own name. */
  name: string | null
  abilities: string[]
  createdAt: string | null
  lastUsedAt: string | null
  expiresAt: string | null
  /** True once expiresAt has passed. */
  expired: boolean
}

/**
 * Creates, lists and revokes API clients' access tokens.
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
      // Audit: right after the token exists; if the record fails, the catch below deletes the client.
      await withAuditRecord(
        async () => null,
        () => ({
          act: 'token.create',
          actor: 'cli',
          outcome: 'done',
          data: {
            client: String(client.id),
            token: tokenId,
            name: input.name,
            abilities: [...input.abilities],
            expires_at: expiresAt,
          },
        })
      )
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
    const token = toAccessToken(row)
    if (!token.verify(new Secret(parsed.secret)) || token.isExpired()) return null
    const now = this.clock.now()
    if (lastUseIsStale(token.lastUsedAt, now)) {
      token.lastUsedAt = now
      await db
        .from(TOKENS_TABLE)
        .where({ id: row.id, type: TOKEN_TYPE })
        .update({ last_used_at: now })
    }
    return token
  }

  /**
   * The access token `tokenId` while it exists and has not expired, else
   * null (the console's session names its token by id; no secret is
   * checked here: the session was opened with the full token).
   */
  async active(tokenId: string): Promise<AccessToken | null> {
    if (!/^[1-9][0-9]{0,17}$/.test(tokenId)) return null
    const row = await db.from(TOKENS_TABLE).where({ id: tokenId, type: TOKEN_TYPE }).first()
    if (!row) return null
    const token = toAccessToken(row)
    return token.isExpired() ? null : token
  }

  /**
   * Every access token, oldest first, with its client's name; `expired` as
   * of `now`.
   */
  async list(now: Date = new Date()): Promise<TokenSummary[]> {
    const rows: Array<Record<string, any>> = await db
      .from(TOKENS_TABLE)
      .join('api_clients', 'auth_access_tokens.tokenable_id', 'api_clients.id')
      .select(
        'auth_access_tokens.id as token_id',
        'api_clients.id as client_id',
        'api_clients.name as client_name',
        'auth_access_tokens.name as token_name',
        'auth_access_tokens.abilities',
        'auth_access_tokens.created_at as token_created_at',
        'auth_access_tokens.last_used_at',
        'auth_access_tokens.expires_at'
      )
      .orderBy('auth_access_tokens.id', 'asc')
    const iso = (value: unknown) => (value ? new Date(value as string).toISOString() : null)
    return rows.map((row) => {
      const expiresAt = iso(row.expires_at)
      return {
        tokenId: String(row.token_id),
        clientId: Number(row.client_id),
        clientName: row.client_name,
        name: row.token_name ?? null,
        abilities: JSON.parse(row.abilities),
        createdAt: iso(row.token_created_at),
        lastUsedAt: iso(row.last_used_at),
        expiresAt,
        expired: expiresAt !== null && new Date(expiresAt).getTime() <= now.getTime(),
      }
    })
  }

  /**
   * Deletes the access token `tokenId` (its API client stays); throws
   * E_TOKEN_NOT_FOUND when there is none. Answers what was revoked.
   */
  async revoke(tokenId: number): Promise<TokenSummary> {
    const tokens = await this.list()
    const token = tokens.find((t) => t.tokenId === String(tokenId))
    if (!token) throw new E_TOKEN_NOT_FOUND([String(tokenId)])
    // Audit: the deletion and its record commit together.
    await withAuditRecord(
      (trx) => trx.from(TOKENS_TABLE).where('id', tokenId).delete(),
      () => ({
        act: 'token.revoke',
        actor: 'cli',
        outcome: 'done',
        data: { client: String(token.clientId), token: token.tokenId, name: token.name },
      })
    )
    this.logger?.info({ clientId: token.clientId, tokenId: token.tokenId }, 'access token revoked')
    return token
  }
}

/** An auth_access_tokens row as the auth package's AccessToken. */
function toAccessToken(row: Record<string, any>): AccessToken {
  return new AccessToken({
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
}
