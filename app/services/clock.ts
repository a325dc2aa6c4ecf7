/**
 * Time source of the services: swap it in tests (`app.container.swap(Clock, …)`)
 * to move time or make sleeps instant.
 */
export class Clock {
  /** Current time. */
  now(): Date {
    return new Date()
  }

  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void> {
    return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve()
  }
}
