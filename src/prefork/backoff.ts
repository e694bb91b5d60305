/**
 * Delays between respawns when drones keep dying before they are ready, and the
 * per-drone request limit with jitter.
 */

/**
 * Seconds to wait before the next spawn after `failures` consecutive start-up failures:
 * the first failure respawns at once (a one-off, e.g. a login race), then 1, 2, 4, 8 …
 * seconds, never more than `max`.
 */
export function crashBackoffSeconds(failures: number, max: number): number {
  if (failures <= 1) return 0;
  return Math.min(max, 2 ** (failures - 2));
}

/**
 * A drone's own max_requests: `max` lowered by a random amount of up to `fraction` of it
 * (never below 1), so drones started together do not all restart together.
 * @param random Returns a number in [0, 1); injectable for tests.
 */
export function jitteredMaxRequests(max: number, fraction: number, random: () => number = Math.random): number {
  if (fraction <= 0 || max <= 1) return max;
  const cut = Math.floor(random() * fraction * max + 0.5);
  return Math.max(1, max - Math.min(cut, Math.floor(fraction * max)));
}
