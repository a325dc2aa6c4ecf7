import { TransitHttpError } from '#kms/transit_server/http_error'
import type { TransitHandler } from '#kms/transit_server/types'

/** Go's strconv.ParseBool true values (Vault parses `?list=` with it). */
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])

/**
 * GET keys?list=true (Vault's equivalent of the LIST verb, which Node's
 * HTTP parser does not accept) — `{ data: { keys: [names, sorted] } }`;
 * 404 `{"errors":[]}` when there are none, as Vault answers an empty list.
 * A plain GET of the collection is Vault's 405 "unsupported operation".
 */
export const listKeys: TransitHandler = async ({ engine, query }) => {
  if (!TRUE.has(query.get('list') ?? '')) {
    throw new TransitHttpError(405, 'unsupported operation', undefined, { allow: 'GET' })
  }
  const names = [...(await engine.store.names())].sort()
  if (names.length === 0) throw new TransitHttpError(404, 'not found', [])
  return { status: 200, data: { keys: names } }
}
