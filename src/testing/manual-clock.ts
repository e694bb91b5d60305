/**
 * A clock that moves only when told to, so tests of timeouts need no real waiting and
 * cannot be flaky on a slow machine.
 */
import type { Clock } from "../clock/clock.ts";

interface Timer {
  at: number;
  fn: () => void;
}

/** A {@link Clock} whose time is `advance`d by hand; due timers run in time order. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, Timer>();

  /** @param start The time `now()` reads at first, in milliseconds. */
  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(timer: unknown): void {
    this.timers.delete(timer as number);
  }

  /** Timers set and not yet run or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms`, running each timer that falls due on the way, earliest
   * first (timers of equal time in the order they were set); `now()` reads each timer's
   * own time while it runs. Timers set by a running timer run too if they fall due in time.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance needs a non-negative number of ms, got ${ms}`);
    const end = this.t + ms;
    for (;;) {
      let next: [number, Timer] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
