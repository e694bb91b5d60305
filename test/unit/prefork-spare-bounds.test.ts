/**
 * The two pieces of state behind the spare bounds, alone: the lowest idle count over the
 * grace window, and the ramp pacing spare spawns.
 */
import { describe, expect, test } from "bun:test";
import { IdleWindow, SPARE_SPAWN_RATE_CAP, SpareRamp } from "../../src/prefork/spare-bounds.ts";

describe("IdleWindow", () => {
  test("no judgement until the pool has been watched for the whole grace period", () => {
    const w = new IdleWindow(0, 7, 3000);
    for (const t of [1000, 2000]) {
      w.close(t, 7);
      expect(w.min(t)).toBeUndefined();
    }
    w.close(3000, 7);
    expect(w.min(3000)).toBe(7);
  });

  test("a dip anywhere in the window counts, between ticks too, until it falls out", () => {
    const w = new IdleWindow(0, 8, 3000);
    w.note(2); // a burst, gone before the tick
    w.note(8);
    w.close(1000, 8);
    w.close(2000, 8);
    for (const t of [3000, 4000]) {
      w.close(t, 8);
      expect(w.min(t)).toBe(2);
    }
    // The bucket ending at 1000 is older than 3 s at 4001.
    w.close(4001, 8);
    expect(w.min(4001)).toBe(8);
  });

  test("the idle count now is part of the minimum", () => {
    const w = new IdleWindow(0, 9, 1000);
    w.close(1000, 9);
    w.note(4);
    expect(w.min(1500)).toBe(4);
  });

  test("a retirement lowers the history, so the same surplus is not counted twice", () => {
    const w = new IdleWindow(0, 9, 2000);
    w.close(1000, 9);
    w.close(2000, 9);
    expect(w.min(2000)).toBe(9);
    w.retired();
    expect(w.min(2000)).toBe(8);
    w.close(3000, 8);
    expect(w.min(3000)).toBe(8);
  });

  test("grace 0 judges the last tick's interval", () => {
    const w = new IdleWindow(0, 6, 0);
    w.note(1);
    w.close(1000, 6);
    expect(w.min(1000)).toBe(1);
    w.close(2000, 6);
    expect(w.min(2000)).toBe(6);
  });

  test("a longer grace from a reload applies to what was already seen", () => {
    const w = new IdleWindow(0, 5, 1000);
    w.note(0);
    w.close(1000, 5);
    w.close(2000, 5);
    w.close(2500, 5);
    expect(w.min(2500)).toBe(5);
    w.setGrace(3000);
    expect(w.min(2500)).toBeUndefined(); // not watched for 3 s yet
    w.close(3000, 5);
    expect(w.min(3000)).toBe(5); // the dip before 1000 was already pruned
  });
});

describe("SpareRamp", () => {
  /** Spare spawns granted per tick while the shortage never ends. */
  function grants(ticks: number): number[] {
    const r = new SpareRamp();
    const out: number[] = [];
    for (let i = 0; i < ticks; i++) {
      let n = 0;
      while (r.take()) n++;
      out.push(n);
      r.tick();
    }
    return out;
  }

  test("one in the first tick, doubling while the shortage lasts, capped", () => {
    expect(SPARE_SPAWN_RATE_CAP).toBe(32);
    expect(grants(9)).toEqual([1, 2, 4, 8, 16, 32, 32, 32, 32]);
  });

  test("a tick without shortage starts over at one", () => {
    const r = new SpareRamp();
    r.take();
    r.take(); // starved
    r.tick();
    r.tick(); // rate 2, then a quiet tick
    expect(r.perTick).toBe(1);
    expect(r.take()).toBe(true);
    expect(r.take()).toBe(false);
  });

  test("using the allowance exactly is no shortage", () => {
    const r = new SpareRamp();
    expect(r.take()).toBe(true);
    r.tick();
    expect(r.perTick).toBe(1);
  });
});
