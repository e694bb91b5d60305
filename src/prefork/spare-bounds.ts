/**
 * The state behind the pool's spare bounds, kept apart so each rule is tested alone:
 * {@link IdleWindow} remembers how few drones were idle over the last grace period (the
 * basis of max_spare_children), {@link SpareRamp} paces the drones started for
 * min_spare_children. Both are plain counters; the pool feeds them its clock and counts.
 */

/** Most spare drones started per tick once the ramp has doubled its way up (php-fpm's cap). */
export const SPARE_SPAWN_RATE_CAP = 32;

/** Most surplus idle drones retired per tick (php-fpm's dynamic mode: one a second). */
export const SURPLUS_RETIRES_PER_TICK = 1;

/**
 * The lowest idle count over a sliding window of `graceMs`. A burst that made drones busy
 * a few seconds ago keeps the minimum low, so drones a recurring load needs are not seen
 * as surplus the moment they fall idle. Updated in O(1) per event: the minimum since the
 * last tick, plus one closed minimum per tick for the rest of the window.
 */
export class IdleWindow {
  private readonly closed: Array<{ end: number; min: number }> = [];
  private open: number;
  private watchedSince: number;

  /**
   * @param now Clock time the pool started (ms).
   * @param idle Idle drones then.
   * @param graceMs Length of the window.
   */
  constructor(
    now: number,
    idle: number,
    private graceMs: number,
  ) {
    this.open = idle;
    this.watchedSince = now;
  }

  /** A new window length (a settings reload); what was seen so far is kept. */
  setGrace(graceMs: number): void {
    this.graceMs = graceMs;
  }

  /** The idle count now (after any change). */
  note(idle: number): void {
    if (idle < this.open) this.open = idle;
  }

  /** A tick: the minimum since the previous one is kept for the rest of the window. */
  close(now: number, idle: number): void {
    this.closed.push({ end: now, min: this.open });
    this.open = idle;
    while (this.closed.length > 0 && this.closed[0]!.end < now - this.graceMs) this.closed.shift();
  }

  /**
   * The fewest idle drones seen over the last `graceMs` (now included), or undefined while
   * the pool has been watched for less than that.
   */
  min(now: number): number | undefined {
    if (now - this.watchedSince < this.graceMs) return undefined;
    let low = this.open;
    for (const c of this.closed) if (c.end >= now - this.graceMs && c.min < low) low = c.min;
    return low;
  }

  /**
   * A surplus drone was retired: the history is lowered as if it had never been there, so
   * the next retirement is justified by what is left, not by a drone already gone.
   */
  retired(): void {
    this.open--;
    for (const c of this.closed) c.min--;
  }
}

/**
 * How many spare drones (for min_spare_children) may start before the next tick: one in the
 * first tick of a shortage, then twice as many each tick the shortage outlasted its
 * allowance, up to {@link SPARE_SPAWN_RATE_CAP}; back to one after a tick with no shortage
 * left. Starting drones costs CPU the drones already running need, so a pool short of
 * spares grows step by step; requests that find no idle drone never wait for this.
 */
export class SpareRamp {
  private rate = 1;
  private left = 1;
  private starved = false;

  /** Spare drones allowed per tick now. */
  get perTick(): number {
    return this.rate;
  }

  /** True when one more spare drone may start now (and counts it); false marks a shortage left over. */
  take(): boolean {
    if (this.left > 0) {
      this.left--;
      return true;
    }
    this.starved = true;
    return false;
  }

  /** Starts the next tick's allowance: doubled after a shortage that outlasted this one's, else one. */
  tick(): void {
    this.rate = this.starved ? Math.min(this.rate * 2, SPARE_SPAWN_RATE_CAP) : 1;
    this.left = this.rate;
    this.starved = false;
  }
}
