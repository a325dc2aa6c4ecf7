import type { TransitHandler } from '#kms/transit_server/types'

/**
 * GET /v1/sys/seal-status — no token needed, no envelope, as Vault's
 * handleSysSealStatus answers (fields of its SealStatusResponse). This
 * server has no seal: always initialised and unsealed, a 1-of-1 Shamir
 * shape so clients that read `t`/`n`/`progress` get sane numbers.
 */
export const sealStatus: TransitHandler = async () => ({
  status: 200,
  raw: true,
  data: {
    type: 'shamir',
    initialized: true,
    sealed: false,
    t: 1,
    n: 1,
    progress: 0,
    nonce: '',
    version: 'rewrap-transit',
    build_date: '',
    migration: false,
    cluster_name: 'rewrap',
    recovery_seal: false,
  },
})
