import { describe, expect, test } from "bun:test";
import { defineMethod, defineService, type JsonValue, MethodException } from "../../src/app/index.ts";
import { createRegistry } from "../../src/app/registry.ts";
import { findJsonProblem } from "../../src/app/serializable.ts";

const ok = () => 1;

describe("defineService", () => {
  test("returns a frozen definition keeping the hooks", () => {
    const childInit = () => {};
    const svc = defineService({ name: "opensrf.x", methods: [{ name: "a", handler: ok }], childInit });
    expect(Object.isFrozen(svc)).toBe(true);
    expect(Object.isFrozen(svc.methods)).toBe(true);
    expect(svc.name).toBe("opensrf.x");
    expect(svc.childInit).toBe(childInit);
  });

  test.each([
    [{ methods: [{ name: "", handler: ok }] }, "methods[0].name must be a non-empty string"],
    [{ methods: [{ name: " a", handler: ok }] }, 'method " a": name has surrounding whitespace'],
    [{ methods: [{ name: "a.atomic", handler: ok }] }, "reserved for atomic twins"],
    [{ methods: [{ name: "opensrf.system.echo", handler: ok }] }, "reserved for a system method"],
    [{ methods: [{ name: "opensrf.system.time.atomic", handler: ok }] }, "reserved"],
    [{ methods: [{ name: "a", handler: "nope" }] }, 'method "a": handler must be a function'],
    [{ methods: [{ name: "a", argc: -1, handler: ok }] }, "argc must be a non-negative integer"],
    [{ methods: [{ name: "a", argc: 1.5, handler: ok }] }, "argc must be a non-negative integer"],
    [
      {
        methods: [
          { name: "a", handler: ok },
          { name: "a", handler: ok },
        ],
      },
      'method "a" is defined twice',
    ],
    [{ methods: "x" }, "methods must be an array"],
    [{ name: "", methods: [] }, "service name must be a non-empty string"],
    [{ methods: [], init: 5 }, "init must be a function"],
  ])("refuses %j", (input, message) => {
    expect(() => defineService(input as never)).toThrow(message);
  });

  test("a service with no methods still has the system methods", () => {
    const reg = createRegistry(defineService({ methods: [] }));
    expect(reg.get("opensrf.system.echo")?.system).toBe(true);
    expect(reg.all().every((m) => m.system)).toBe(true);
  });

  test("every method gets an .atomic twin sharing its definition", () => {
    const def = defineMethod<[JsonValue, JsonValue?]>({ name: "pick", argc: 1, handler: (_c, a, b) => b ?? a });
    const reg = createRegistry(defineService({ methods: [def] }));
    expect(reg.get("pick")).toMatchObject({ apiName: "pick", atomic: false, system: false, argc: 1 });
    expect(reg.get("pick.atomic")).toMatchObject({ apiName: "pick.atomic", atomic: true, argc: 1 });
    expect(reg.get("pick.atomic")?.definition).toBe(def);
  });
});

describe("MethodException", () => {
  test("keeps code and text; refuses a bad code", () => {
    const e = new MethodException(403, "no");
    expect([e.statusCode, e.message, e.name]).toEqual([403, "no", "MethodException"]);
    expect(() => new MethodException(4.5, "x")).toThrow(RangeError);
  });
});

describe("findJsonProblem", () => {
  test("accepts what JSON carries faithfully", () => {
    const shared = { s: 1 };
    for (const v of [
      null,
      0,
      -1.5,
      "",
      "é",
      true,
      [],
      {},
      [1, [2, [3]]],
      { a: { b: [null, "x"] } },
      { __c: "aou", __p: [1, "Main"] },
      new Date(0),
      { skipped: undefined },
      [shared, shared], // shared, not cyclic
    ]) {
      expect(findJsonProblem(v)).toBeNull();
    }
  });

  test("names the problem and where it is", () => {
    const cyc: Record<string, unknown> = { a: [] };
    (cyc.a as unknown[]).push(cyc);
    expect(findJsonProblem(10n)).toBe("a BigInt at the top level");
    expect(findJsonProblem({ items: [{ price: 1n }] })).toBe("a BigInt at items[0].price");
    expect(findJsonProblem({ "odd key": () => 1 })).toBe('a function at ["odd key"]');
    expect(findJsonProblem([Symbol("s")])).toBe("a symbol at [0]");
    expect(findJsonProblem({ n: Number.NaN })).toBe("the number NaN at n");
    expect(findJsonProblem([Number.POSITIVE_INFINITY])).toBe("the number Infinity at [0]");
    expect(findJsonProblem(new Map())).toStartWith("a Map");
    expect(findJsonProblem({ s: new Set([1]) })).toStartWith("a Set");
    expect(findJsonProblem(cyc)).toBe("a cycle at a[0]");
    expect(findJsonProblem({ toJSON: () => 5n })).toBe("a BigInt at the top level");
    expect(
      findJsonProblem({
        toJSON() {
          throw new Error("nope");
        },
      }),
    ).toBe("toJSON() threw at the top level: nope");
  });

  test("handles nesting deeper than the call stack", () => {
    let deep: JsonValue = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findJsonProblem(deep)).toBeNull();
  });
});
