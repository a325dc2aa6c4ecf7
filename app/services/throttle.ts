import type { Clock } from '#services/clock'

/**
 * Paces the rewrap loop: a fixed sleep after every batch (the published
 * behaviour, `--sleep-ms`) and a rows/s ceiling (`--max-rate`, 0 = none).
 */
export class Throttle {
  #startedAt: number
  #rows = 0

  constructor(
    private clock: Clock,
    private sleepMs: number,
    private maxRate: number
  ) {
    this.#startedAt = clock.now().getTime()
  }

  /**
   * Milliseconds to wait after a batch of `rows` (pure; exposed for tests).
   */
  delayAfter(rows: number): number {
    this.#rows += rows
    let delay = Math.max(0, this.sleepMs)
    if (this.maxRate > 0) {
      const earliest = this.#startedAt + (this.#rows / this.maxRate) * 1000
      delay = Math.max(delay, earliest - this.clock.now().getTime())
    }
    return Math.ceil(delay)
  }

  /**
   * Waits as long as the limits require after a batch.
   */
  async afterBatch(rows: number) {
    const delay = this.delayAfter(rows)
    if (delay > 0) await this.clock.sleep(delay)
  }
}
