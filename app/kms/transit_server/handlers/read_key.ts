import { TransitHttpError } from '#kms/transit_server/http_error'
import { keyView } from '#kms/transit_server/key_access'
import type { TransitHandler } from '#kms/transit_server/types'

/**
 * GET keys/:name — the key's versions and policy; 404 `{"errors":[]}` when unknown.
 */
export const readKey: TransitHandler = async ({ engine, params }) => {
  const ring = await engine.store.load(params.name)
  if (!ring) throw new TransitHttpError(404, 'not found', [])
  return { status: 200, data: keyView(ring) }
}
