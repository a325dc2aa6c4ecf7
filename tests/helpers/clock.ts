/*
| A test clock: the wall clock moved by `offsetMs`, sleeps instant. Swap it in
| with `app.container.swap(Clock, () => clock)`.
*/
import { Clock } from '#services/clock'

/** Wall clock moved by `offsetMs`; sleeps are instant. */
export class ShiftedClock extends Clock {
  /** How far ahead of (or behind, when negative) the wall clock, ms. */
  offsetMs = 0

  /** The shifted time. */
  now() {
    return new Date(Date.now() + this.offsetMs)
  }

  /** Returns at once. */
  sleep() {
    return Promise.resolve()
  }
}
