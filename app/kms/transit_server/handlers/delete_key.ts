import { badRequest } from '#kms/transit_server/http_error'
import type { TransitHandler } from '#kms/transit_server/types'

/**
 * DELETE keys/:name — needs `deletion_allowed`; answers 204.
 */
export const deleteKey: TransitHandler = async ({ engine, params }) => {
  const ring = await engine.store.load(params.name)
  if (!ring) throw badRequest('could not delete key; not found')
  if (!ring.deletionAllowed) throw badRequest('deletion is not allowed for this key')
  await engine.store.delete(params.name)
  return { status: 204 }
}
