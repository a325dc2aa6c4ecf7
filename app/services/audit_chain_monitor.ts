/*
|--------------------------------------------------------------------------
| Periodic audit chain check for /metrics
|--------------------------------------------------------------------------
|
| Verifies the stored audit chain (what `audit:verify` does) at most once
| per `intervalMs`, in the background of a scrape: a scrape never waits
| for it and reports the last check that finished (nothing before the
| first). A check that could not run (database down) keeps the previous
| result. One per process (a container singleton); the clock is injected.
|
*/
import type { AuditChainVerdict } from '#app/governance/audit_chain'
import { SingleFlightCache } from '#services/single_flight_cache'

/** The last finished check: whether the chain verified, and when (ms). */
export interface AuditChainCheck {
  ok: boolean
  checkedAt: number
}

/** Default interval between two checks: 5 minutes. */
export const AUDIT_CHECK_INTERVAL_MS = 5 * 60_000

/**
 * Holds the result of the last audit chain verification and starts the
 * next one when it is older than `intervalMs`.
 */
export class AuditChainMonitor {
  #cache: SingleFlightCache<AuditChainCheck>
  #last: AuditChainCheck | null = null

  /**
   * @param verify verifies the stored chain (AuditExportService.verify)
   * @param now clock in milliseconds
   */
  constructor(
    private verify: () => Promise<AuditChainVerdict>,
    private now: () => number,
    private intervalMs = AUDIT_CHECK_INTERVAL_MS
  ) {
    this.#cache = new SingleFlightCache(now)
  }

  /** The last finished check (null before the first); starts the next one when due. */
  latest(): AuditChainCheck | null {
    this.refresh().catch(() => {})
    return this.#last
  }

  /** Runs a check unless one finished less than `intervalMs` ago; resolves with its result. */
  refresh(): Promise<AuditChainCheck> {
    return this.#cache.get(this.intervalMs, async () => {
      const verdict = await this.verify()
      const check = { ok: verdict.ok, checkedAt: this.now() }
      this.#last = check
      return check
    })
  }
}
