/**
 * The real {@link Clock}: monotonic time and the runtime's timers.
 */
import type { Clock } from "./types.ts";

/** Monotonic milliseconds and real timers; the pool's default. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};
