import { describe, expect, test } from "bun:test";
import { makeResource, makeThread, makeXid } from "../../src/protocol/ids.ts";

const nowSecs = () => Math.floor(Date.now() / 1000);

describe("makeThread", () => {
  test("C form: <secs>.<6-digit usec>.<10 digits><pid>", () => {
    const before = nowSecs();
    const t = makeThread();
    const m = /^(\d+)\.(\d{6})\.(\d{10})(\d+)$/.exec(t);
    expect(m).not.toBeNull();
    const [, secs, , , pid] = m as RegExpExecArray;
    expect(Number(secs)).toBeGreaterThanOrEqual(before);
    expect(Number(secs)).toBeLessThanOrEqual(nowSecs());
    expect(pid).toBe(String(process.pid));
  });

  test("embeds a given pid", () => {
    expect(makeThread(28979)).toMatch(/^\d+\.\d{6}\.\d{10}28979$/);
  });

  test("unique across many calls in a tight loop", () => {
    const n = 20_000;
    const ids = new Set(Array.from({ length: n }, () => makeThread(1)));
    expect(ids.size).toBe(n);
  });

  test("time part never goes backwards", () => {
    let prev = "";
    for (let i = 0; i < 2000; i++) {
      const t = makeThread().split(".").slice(0, 2).join(".");
      const [s, u] = t.split(".").map(Number) as [number, number];
      const [ps, pu] = (prev || "0.0").split(".").map(Number) as [number, number];
      expect(s * 1e6 + u).toBeGreaterThan(ps * 1e6 + pu);
      prev = t;
    }
  });
});

describe("makeXid", () => {
  test("C form: <secs><pid><counter>, counter grows by one", () => {
    const a = makeXid();
    const b = makeXid();
    const pid = String(process.pid);
    const m = new RegExp(`^(\\d{10})${pid}(\\d+)$`).exec(a);
    expect(m).not.toBeNull();
    const [, secs, count] = m as RegExpExecArray;
    // The prefix is the time of the process's first call (bun runs all test files in one process).
    expect(Number(secs)).toBeLessThanOrEqual(nowSecs());
    expect(Number(secs)).toBeGreaterThanOrEqual(nowSecs() - Math.ceil(process.uptime()) - 2);
    expect(b).toBe(`${secs}${pid}${Number(count) + 1}`);
  });

  test("unique across many calls", () => {
    const n = 20_000;
    expect(new Set(Array.from({ length: n }, makeXid)).size).toBe(n);
  });
});

describe("makeResource", () => {
  test("plain client: _<host>_<secs>.<usec>_<pid>", () => {
    expect(makeResource("", "vm")).toMatch(new RegExp(`^_vm_\\d+\\.\\d{6}_${process.pid}$`));
  });

  test("listener and drone prefixes", () => {
    expect(makeResource("opensrf.math_listener", "vm", 28589)).toMatch(/^opensrf\.math_listener_vm_\d+\.\d{6}_28589$/);
    expect(makeResource("opensrf.math_drone", "host.example.org", 28594)).toMatch(
      /^opensrf\.math_drone_host\.example\.org_\d+\.\d{6}_28594$/,
    );
  });

  test("unique across many calls", () => {
    const n = 20_000;
    expect(new Set(Array.from({ length: n }, () => makeResource("x", "h", 1))).size).toBe(n);
  });
});
