/**
 * Each drone's own request limit: max_requests with jitter, so drones started together
 * do not all retire together.
 */

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
