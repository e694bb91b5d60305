/**
 * A text split into the chunks a socket might deliver it in, for the tests that feed a
 * parser piece by piece and expect what it reads whole.
 */
import { prng } from "./prng.ts";

/**
 * `text` split at `points` (offsets, sorted and with duplicates dropped first). An offset of
 * 0 or `text.length` gives an empty chunk at that end, as a socket may deliver one.
 */
export function cutAt(text: string, points: readonly number[]): string[] {
  const out: string[] = [];
  let last = 0;
  for (const p of [...new Set(points)].sort((a, b) => a - b)) {
    out.push(text.slice(last, p));
    last = p;
  }
  out.push(text.slice(last));
  return out;
}

/** `text` cut at up to `n` offsets drawn from the seeded PRNG: the same chunks on every run. */
export function randomCuts(text: string, n: number, seed: number): string[] {
  const r = prng(seed);
  return cutAt(
    text,
    Array.from({ length: n }, () => r.int(text.length)),
  );
}
