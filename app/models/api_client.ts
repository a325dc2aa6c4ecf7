import { DateTime } from 'luxon'
import { BaseModel, column } from '@adonisjs/lucid/orm'
import { DbAccessTokensProvider } from '@adonisjs/auth/access_tokens'

/**
 * A service account that owns access tokens (a dashboard, an operator, an
 * app). Created by `node ace token:create`.
 */
export default class ApiClient extends BaseModel {
  static table = 'api_clients'

  /** Token provider: opaque bearer tokens stored hashed in auth_access_tokens. */
  static accessTokens = DbAccessTokensProvider.forModel(ApiClient, {
    prefix: 'rwp_',
    table: 'auth_access_tokens',
  })

  @column({ isPrimary: true })
  declare id: number

  @column()
  declare name: string

  @column.dateTime({ autoCreate: true })
  declare createdAt: DateTime
}
