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

/** Time moves only when slept (or when `t` is moved by hand); every sleep is recorded. */
export class FakeClock extends Clock {
  /** The time now, ms since the epoch. */
  t = 1_000_000
  /** Every sleep asked for, ms, in order. */
  slept: number[] = []

  /** `t` as a Date. */
  now() {
    return new Date(this.t)
  }

  /** Records `ms` and moves `t` by it. */
  async sleep(ms: number) {
    this.slept.push(ms)
    this.t += ms
  }
}
