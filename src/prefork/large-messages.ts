/**
 * What a long-lived listener keeps after a large message. A request of a megabyte passes
 * through it as several megabytes of strings (the socket's chunks, the joined text, the IPC
 * message to the drone); once it is gone, that garbage and the heap grown for it are held
 * until a collection happens to run, which an idle listener may not do for a long while.
 * Measured (BENCHMARKS.md, "Latest"): after three 1 MB echo calls a listener held 3.5–3.9 MB
 * more anonymous memory 4 s later than before them, and 1.9–2.0 MB 15 s later; with this
 * release, none from 4 s on.
 */
import { type Clock, realClock } from "../clock/clock.ts";
import { releaseMemoryNow } from "./startup-memory.ts";

/** A message body of at least this many characters is a large one. */
export const LARGE_MESSAGE_CHARS = 256 * 1024;

/** How long after the last large message the memory is given back. */
export const RELEASE_AFTER_MS = 2000;

/** Options of {@link LargeMessageRelease}; all have defaults, tests inject them. */
export interface LargeMessageReleaseOptions {
  clock?: Clock;
  /** What giving memory back does: a full collection and a shrink ({@link releaseMemoryNow}). */
  release?: () => void;
  thresholdChars?: number;
  afterMs?: number;
}

/**
 * Gives memory back `afterMs` after the last large message, once per run of them: a steady
 * stream of ordinary messages never triggers it, a burst of large ones triggers it once. The
 * shrink drops compiled code too, so the next requests are compiled again (a few ms of CPU,
 * once per burst of large messages), and the collection pauses the listener for a few ms.
 */
export class LargeMessageRelease {
  private timer: unknown;
  private readonly clock: Clock;
  private readonly release: () => void;
  private readonly threshold: number;
  private readonly afterMs: number;

  constructor(opts: LargeMessageReleaseOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.release = opts.release ?? releaseMemoryNow;
    this.threshold = opts.thresholdChars ?? LARGE_MESSAGE_CHARS;
    this.afterMs = opts.afterMs ?? RELEASE_AFTER_MS;
  }

  /** A message whose body has `chars` characters passed through. */
  note(chars: number): void {
    if (chars < this.threshold) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.release();
    }, this.afterMs);
    // A pending release must not keep a stopping process alive.
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Drops a pending release (the listener is stopping). */
  stop(): void {
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
