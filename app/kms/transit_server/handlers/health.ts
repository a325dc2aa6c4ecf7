import type { TransitHandler } from '#kms/transit_server/types'

/**
 * GET /v1/sys/health — always initialised, unsealed, active (no token needed).
 */
export const health: TransitHandler = async ({ engine }) => ({
  status: 200,
  raw: true,
  data: {
    initialized: true,
    sealed: false,
    standby: false,
    performance_standby: false,
    replication_performance_mode: 'disabled',
    replication_dr_mode: 'disabled',
    server_time_utc: engine.now(),
    version: 'rewrap-transit',
    cluster_name: 'rewrap',
  },
})
