/**
 * bench/vs-c.ts's cell order within a pool set: a request only ours is sent (1 MB, which C
 * cannot take) passes through the shared C router and makes it slower for our class from then
 * on, so no cell both sides run may come after one; crowded cells come after the rest.
 */
import { expect, test } from "bun:test";
import { type Case, cellOrder, ONE_SIDED } from "../../bench/vs-c-order.ts";

const CASES: Record<Case, number[]> = {
  echo: [1, 8, 32],
  add: [8],
  session: [1, 8],
  midEcho: [1],
  bigEcho: [1],
};

test("one-sided cells run after every cell both sides run, crowded ones after the rest", () => {
  const order = cellOrder(CASES, 15);
  expect(order.length).toBe(Object.values(CASES).flat().length);
  const firstOneSided = order.findIndex(([k]) => ONE_SIDED.has(k));
  expect(firstOneSided).toBeGreaterThan(0);
  expect(order.slice(firstOneSided).every(([k]) => ONE_SIDED.has(k))).toBe(true);
  const both = order.slice(0, firstOneSided);
  const firstCrowded = both.findIndex(([, c]) => c > 15);
  expect(firstCrowded).toBeGreaterThan(0);
  expect(both.slice(firstCrowded).every(([, c]) => c > 15)).toBe(true);
  expect(ONE_SIDED.has("bigEcho")).toBe(true);
});
