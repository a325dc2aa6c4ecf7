import app from '@adonisjs/core/services/app'
import { defineConfig, stores } from '@adonisjs/limiter'
import type { InferLimiters } from '@adonisjs/limiter/types'

/**
 * Rate-limit stores (@adonisjs/limiter). `database` keeps counters in the
 * app's PostgreSQL (table `rate_limits`), so every app process and
 * restart shares them; keys over their limit are then also blocked in
 * process memory until the block ends, so a flood from a blocked address
 * costs no query. `memory` is per process (for a single process without
 * a database write per failure).
 */
const limiterConfig = defineConfig({
  default: 'database',
  stores: {
    database: stores.database({ tableName: 'rate_limits' }),
    memory: stores.memory({}),
  },
})

export default limiterConfig

/** One limit: `requests` failures per `duration`, then blocked for `blockDuration`. */
export interface FailureLimit {
  requests: number
  duration: string
  blockDuration: string
}

/**
 * Failed authentications (a bearer token that is malformed, unknown,
 * expired or with a wrong secret) allowed per client address and per token
 * id before further requests from that address / for that token id answer
 * 429 E_TOO_MANY_REQUESTS with Retry-After, until the block ends. Requests
 * without an Authorization header are not counted. The test suite sends
 * hundreds of bad tokens from one address, so its limits are high (the
 * limiter's own tests set small ones).
 */
export const authFailureLimits: { perIp: FailureLimit; perToken: FailureLimit } = {
  perIp: {
    requests: app.inTest ? 100_000 : 30,
    duration: '5 minutes',
    blockDuration: '15 minutes',
  },
  perToken: {
    requests: app.inTest ? 100_000 : 10,
    duration: '5 minutes',
    blockDuration: '15 minutes',
  },
}

declare module '@adonisjs/limiter/types' {
  export interface LimitersList extends InferLimiters<typeof limiterConfig> {}
}
