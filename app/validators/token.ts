import vine from '@vinejs/vine'
import string from '@adonisjs/core/helpers/string'
import { ABILITIES, type Ability } from '#app/abilities'

/**
 * One ability name, reported with the bad value and the valid list.
 */
const knownAbility = vine.createRule((value, _options, field) => {
  if (typeof value !== 'string') return
  if (!(ABILITIES as readonly string[]).includes(value)) {
    field.report(
      `Unknown ability "${value}" (valid: ${ABILITIES.join(', ')})`,
      'knownAbility',
      field
    )
  }
})

/**
 * A token id within the id column's range.
 */
const tokenIdRange = vine.createRule((value, _options, field) => {
  if (typeof value !== 'string') return
  if (!/^[1-9][0-9]{0,9}$/.test(value) || Number(value) > 2_147_483_647) {
    field.report(
      `Invalid token id "${value}" (a positive integer, as token:list shows)`,
      'tokenId',
      field
    )
  }
})

/**
 * A positive duration such as `30d`, `12h`, `90m` or `3600s`.
 */
const duration = vine.createRule((value, _options, field) => {
  if (typeof value !== 'string' || value === 'never') return
  let seconds = 0
  try {
    seconds = /^[0-9]+\s*[a-z]+$/i.test(value.trim()) ? Number(string.seconds.parse(value)) : 0
  } catch {
    seconds = 0
  }
  if (!(seconds >= 1)) {
    field.report(`Invalid duration "${value}" (use e.g. 30d, 12h, 90m)`, 'duration', field)
  }
})

/** Lifetime of a token created without `--expires-in`. */
export const DEFAULT_TOKEN_LIFETIME = '90d'

/**
 * `token:create` input: a client name, at least one known ability, a
 * lifetime (`never` only when asked for explicitly: it becomes undefined).
 */
export const createTokenValidator = vine.compile(
  vine.object({
    name: vine.string().trim().minLength(1).maxLength(100),
    abilities: vine
      .array(
        vine
          .string()
          .trim()
          .use(knownAbility())
          .transform((value) => value as Ability)
      )
      .minLength(1)
      .distinct(),
    expiresIn: vine
      .string()
      .trim()
      .use(duration())
      .optional()
      .transform((value) => (value === 'never' ? undefined : value)),
  })
)

/**
 * `token:revoke` input: a token id (a positive 32-bit integer, as
 * `token:list` shows it).
 */
export const revokeTokenValidator = vine.compile(
  vine.object({
    id: vine
      .string()
      .trim()
      .use(tokenIdRange())
      .transform((value) => Number(value)),
  })
)
