/**
 * A fixed-bucket histogram: one array increment per observation, cumulated only when
 * exported.
 */

/** Request duration buckets in seconds: 5 ms up to a minute. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A histogram's state: per-bucket (not cumulative) counts; the `+Inf` bucket is `count`. */
export interface HistogramSnapshot {
  /** Upper bounds, ascending, without +Inf. */
  bounds: readonly number[];
  /** Observations in (bounds[i-1], bounds[i]]. */
  counts: readonly number[];
  sum: number;
  count: number;
}

/** Counts observations into buckets. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** @param bounds Upper bounds, ascending. */
  constructor(private readonly bounds: readonly number[] = DURATION_BUCKETS) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  /** A copy of the current state. */
  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}
