/**
 * The router's I/O-free parts: the class/node table and the record of recent forwards
 * used to recover the messages behind bodiless bounces.
 */
import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import { RecentForwards } from "../../src/router/recent-forwards.ts";
import { Registry } from "../../src/router/registry.ts";

const A = "opensrf@localhost/svc_listener_a_1.0_1";
const B = "opensrf@localhost/svc_listener_b_1.0_2";
const C = "opensrf@localhost/svc_listener_c_1.0_3";

function picks(r: Registry, cls: string, n: number): Array<string | undefined> {
  return Array.from({ length: n }, () => r.nextNode(cls)?.jid);
}

describe("Registry", () => {
  test("register reports new class, new node, already registered", () => {
    const r = new Registry();
    expect(r.register("svc", A)).toBe("new-class");
    expect(r.register("svc", B)).toBe("new-node");
    expect(r.register("svc", A)).toBe("already-registered");
    expect(r.register("other", A)).toBe("new-class");
    expect(r.classNames()).toEqual(["svc", "other"]);
    expect(r.nodeCount("svc")).toBe(2);
    expect(r.nodeCount("other")).toBe(1);
    expect(r.nodeCount("nope")).toBe(0);
    expect(r.classesOf(A)).toEqual(["svc", "other"]);
    expect(r.classesOf(B)).toEqual(["svc"]);
    expect(r.classesOf(C)).toEqual([]);
  });

  test("nextNode goes round-robin in registration order and counts each forward", () => {
    const r = new Registry();
    r.register("svc", A);
    r.register("svc", B);
    r.register("svc", C);
    expect(picks(r, "svc", 7)).toEqual([A, B, C, A, B, C, A]);
    expect(r.classStats("svc")).toEqual({ [A]: 3, [B]: 2, [C]: 2 });
    expect(r.classTotal("svc")).toBe(7);
  });

  test("a duplicate register is a no-op: same order, counts kept", () => {
    const r = new Registry();
    r.register("svc", A);
    r.register("svc", B);
    expect(picks(r, "svc", 3)).toEqual([A, B, A]);
    expect(r.register("svc", A)).toBe("already-registered");
    expect(r.register("svc", B)).toBe("already-registered");
    expect(r.nodeCount("svc")).toBe(2);
    expect(r.classStats("svc")).toEqual({ [A]: 2, [B]: 1 });
    expect(picks(r, "svc", 3)).toEqual([B, A, B]);
  });

  test("unregister removes the node, and the class with its last node", () => {
    const r = new Registry();
    r.register("svc", A);
    r.register("svc", B);
    r.register("keep", C);
    expect(r.unregister("svc", A)).toBe(false);
    expect(r.hasNode("svc", A)).toBe(false);
    expect(r.hasNode("svc", B)).toBe(true);
    expect(r.classNames()).toEqual(["svc", "keep"]);
    expect(r.unregister("svc", B)).toBe(true);
    expect(r.classNames()).toEqual(["keep"]);
    expect(r.nodeCount("svc")).toBe(0);
    expect(r.nextNode("svc")).toBeUndefined();
    expect(r.classStats("svc")).toEqual({});
    expect(r.classTotal("svc")).toBe(0);
    // Unknown class or node: nothing changes.
    expect(r.unregister("svc", B)).toBe(false);
    expect(r.unregister("keep", A)).toBe(false);
    expect(r.nodeCount("keep")).toBe(1);
  });

  test("round-robin carries on over the remaining nodes after a removal", () => {
    const r = new Registry();
    for (const n of [A, B, C]) r.register("svc", n);
    expect(picks(r, "svc", 1)).toEqual([A]);
    r.unregister("svc", B);
    expect(picks(r, "svc", 4)).toEqual([C, A, C, A]);
    r.register("svc", B);
    expect(new Set(picks(r, "svc", 3))).toEqual(new Set([A, B, C]));
  });

  test("a class re-created after removal starts with fresh counts", () => {
    const r = new Registry();
    r.register("svc", A);
    picks(r, "svc", 5);
    r.unregister("svc", A);
    expect(r.register("svc", A)).toBe("new-class");
    expect(r.classStats("svc")).toEqual({ [A]: 0 });
  });
});

describe("RecentForwards", () => {
  afterEach(() => {
    setSystemTime();
  });

  const fwd = (to: string, n: number) => ({
    to,
    thread: `t${n}`,
    body: `[${n}]`,
    routerFrom: "client@localhost/c",
    xid: `x${n}`,
  });

  test("k bodiless bounces from a node recover exactly its last k forwards, newest first", () => {
    const rf = new RecentForwards();
    for (let i = 1; i <= 5; i++) {
      rf.record(fwd(A, i));
      rf.record(fwd(B, 100 + i));
    }
    expect(rf.recover(A)).toEqual(fwd(A, 5));
    expect(rf.recover(A)).toEqual(fwd(A, 4));
    expect(rf.recover(A)).toEqual(fwd(A, 3));
    // B is untouched by A's bounces.
    expect(rf.recover(B)).toEqual(fwd(B, 105));
    expect(rf.recover(A)).toEqual(fwd(A, 2));
    expect(rf.recover(A)).toEqual(fwd(A, 1));
    expect(rf.recover(A)).toBeUndefined();
    expect(rf.recover(C)).toBeUndefined();
  });

  test("hasForwardedTo: only nodes something was forwarded to", () => {
    const rf = new RecentForwards();
    rf.record(fwd(A, 1));
    expect(rf.hasForwardedTo(A)).toBe(true);
    expect(rf.hasForwardedTo(B)).toBe(false);
  });

  test("a new forward to the node starts a new count", () => {
    const rf = new RecentForwards();
    rf.record(fwd(A, 1));
    rf.record(fwd(A, 2));
    expect(rf.recover(A)).toEqual(fwd(A, 2));
    rf.record(fwd(A, 3));
    expect(rf.recover(A)).toEqual(fwd(A, 3));
    expect(rf.recover(A)).toEqual(fwd(A, 2));
  });

  test("keeps the last 64 forwards per node", () => {
    const rf = new RecentForwards();
    for (let i = 1; i <= 70; i++) rf.record(fwd(A, i));
    const got: string[] = [];
    for (let s = rf.recover(A); s; s = rf.recover(A)) got.push(s.thread!);
    expect(got).toEqual(Array.from({ length: 64 }, (_, i) => `t${70 - i}`));
  });

  test("nodes not forwarded to for a minute are forgotten when another node is first seen", () => {
    const rf = new RecentForwards();
    setSystemTime(new Date("2030-01-01T00:00:00Z"));
    rf.record(fwd(A, 1));
    setSystemTime(new Date("2030-01-01T00:00:59Z"));
    rf.record(fwd(B, 2));
    expect(rf.recover(A)).toEqual(fwd(A, 1));
    setSystemTime(new Date("2030-01-01T00:01:01Z"));
    rf.record(fwd(C, 3));
    // A (last forward 61 s ago) is forgotten; B (2 s ago) is kept.
    expect(rf.recover(A)).toBeUndefined();
    expect(rf.recover(B)).toEqual(fwd(B, 2));
  });
});
