/**
 * Delays between respawns when drones keep dying before they are ready.
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
