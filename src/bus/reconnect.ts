/**
 * What both bus connections do when their link breaks, so they do it alike: tell the
 * offline handlers, then try again after a delay that starts at 100 ms and doubles up to a
 * bound, back at the start once online again.
 */
import type { Logger } from "../log/types.ts";

/** First delay before a reconnect attempt. */
const BACKOFF_START_MS = 100;
/** Default bound of the delay. */
const BACKOFF_MAX_MS = 5_000;

/** The reconnect timer and its doubling delay. */
export class ReconnectBackoff {
  private delay = BACKOFF_START_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** @param maxMs Bound of the delay (default 5 s). */
  constructor(private readonly maxMs = BACKOFF_MAX_MS) {}

  /** How long the next attempt will wait, ms: for the line that announces it. */
  get nextDelayMs(): number {
    return this.delay;
  }

  /** Runs `attempt` after the current delay, and doubles the delay (up to the bound) for the one after. */
  schedule(attempt: () => void): void {
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, this.maxMs);
    this.timer = setTimeout(attempt, delay);
  }

  /** Online again: the next loss starts from the first delay. */
  reset(): void {
    this.delay = BACKOFF_START_MS;
  }

  /** Closing: no attempt is to run. */
  cancel(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Calls every offline handler of the connection at `address`; one that throws is logged and
 * does not keep the others from being told.
 */
export function notifyOffline(handlers: Iterable<() => void>, logger: Logger, address: string): void {
  for (const h of handlers) {
    try {
      h();
    } catch (e) {
      logger.error(`offline handler failed on ${address}: ${(e as Error).stack ?? e}`);
    }
  }
}
