/**
 * Time as the host, the pool, the registration loop and the client see it: an interface so
 * tests (and the author's testing kit) can drive timers by hand, and the real one. A folder
 * of its own because both app/ and client/ use it, and app/ depends on client/.
 */

/** Timers, injectable so tests control time. */
export interface Clock {
  /** Milliseconds, monotonic enough for durations. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

/** Monotonic milliseconds and the runtime's timers; the default everywhere. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};
