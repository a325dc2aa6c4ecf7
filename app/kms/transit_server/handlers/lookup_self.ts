import { requestId, vaultEnvelope } from '#kms/transit_server/response'
import type { TransitHandler } from '#kms/transit_server/types'

/**
 * GET|POST /v1/auth/token/lookup-self — the caller's token, shaped as
 * Vault's TokenStore.handleLookup answers for a root token (no expiry, no
 * TTL, policies ["root"]: the server's token may do everything).
 *
 * Vault echoes the token itself as `id`; this server never does: `id` is
 * "" (as Vault's own lookup-accessor answers it), and `accessor` is a
 * random handle made when the server started, unrelated to the token.
 */
export const lookupSelf: TransitHandler = async ({ engine }) => {
  const data = {
    id: '',
    accessor: engine.tokenAccessor,
    policies: ['root'],
    path: 'auth/token/root',
    meta: null,
    display_name: 'root',
    num_uses: 0,
    orphan: true,
    creation_time: engine.startedAt,
    creation_ttl: 0,
    expire_time: null,
    ttl: 0,
    explicit_max_ttl: 0,
    entity_id: '',
    type: 'service',
  }
  return {
    status: 200,
    raw: true,
    data: { ...vaultEnvelope(requestId(engine.random), data), mount_type: 'token' },
  }
}
