import { describe, expect, test } from "bun:test";
import math from "../../examples/math.ts";
import { createServiceHost, defineService, type ServiceDefinition } from "../../src/app/index.ts";
import { createRegistry } from "../../src/app/registry.ts";
import { summarizeMethod } from "../../src/app/system-methods.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { request } from "../../src/protocol/messages.ts";
import type { JsonValue, OsrfMessage } from "../../src/protocol/types.ts";
import { MemoryTransport, RecordingLogger, TableClient } from "../../src/testing/doubles.ts";

/** Calls `method` on a fresh host; returns the raw bodies and the decoded messages. */
async function call(definition: ServiceDefinition, service: string, method: string, params: JsonValue[] = []) {
  const transport = new MemoryTransport();
  const host = createServiceHost({
    service,
    definition,
    transport,
    client: new TableClient(),
    settings: { keepalive: 5, maxChunkSize: 51200, maxBundleSize: 1_000_000 },
    logger: new RecordingLogger(),
    logProtect: [],
  });
  await host.handle({
    to: transport.jid,
    from: "opensrf@localhost/_client",
    routerFrom: "",
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    thread: "t1",
    xid: "x1",
    body: encodeBody([request(1, method, params)]),
  });
  await host.close(0);
  const bodies = transport.sent.map((s) => s.body ?? "");
  const msgs: OsrfMessage[] = bodies.flatMap((b) => decodeBody(b));
  const results = msgs.flatMap((m) => (m.type === "RESULT" ? [m.payload.content] : []));
  const last = msgs.at(-1);
  return { bodies, results, status: last?.type === "STATUS" ? last.payload : undefined };
}

const MATH_NAMES = [
  "add",
  "add.atomic",
  "sub",
  "sub.atomic",
  "mult",
  "mult.atomic",
  "div",
  "div.atomic",
  // C's system methods, in C's registration order…
  "opensrf.system.method",
  "opensrf.system.method.atomic",
  "opensrf.system.method.all",
  "opensrf.system.method.all.atomic",
  "opensrf.system.echo",
  "opensrf.system.echo.atomic",
  // …then Rust's summary and Perl's time.
  "opensrf.system.method.all.summary",
  "opensrf.system.method.all.summary.atomic",
  "opensrf.system.time",
  "opensrf.system.time.atomic",
];

describe("opensrf.system.method.all", () => {
  test("one RESULT per method, in registration order, then 205", async () => {
    const { results, status } = await call(math, "opensrf.math", "opensrf.system.method.all");
    expect(results.map((r) => (r as { api_name: string }).api_name)).toEqual(MATH_NAMES);
    expect(status?.statusCode).toBe(205);
  });

  test("introspection objects have C's keys in C's order", async () => {
    const { bodies } = await call(math, "opensrf.math", "opensrf.system.method.all");
    const body = bodies.join("");
    expect(body).toContain(
      '{"api_name":"opensrf.system.echo","method":null,"service":"opensrf.math",' +
        '"notes":"Echos all data sent to the server back to the client. PARAMS([a, b, ...])",' +
        '"argc":0,"sysmethod":1,"atomic":0,"cachable":0}',
    );
    expect(body).toContain(
      '{"api_name":"opensrf.system.method.atomic","method":null,"service":"opensrf.math",' +
        '"notes":"Return a list of methods whose names have the same initial substring as that of the ' +
        'provided method name PARAMS( methodNameSubstring )","argc":1,"sysmethod":1,"atomic":1,"cachable":0}',
    );
    // An author method: C's fields, then the signature Perl would add.
    expect(body).toContain(
      '{"api_name":"add","method":"osrfMathRun","service":"opensrf.math","notes":"Adds two numbers",' +
        '"argc":2,"sysmethod":0,"atomic":0,"cachable":0,"signature":{"desc":"Adds two numbers",',
    );
  });

  test("the .atomic twin returns every description in one array", async () => {
    const { results } = await call(math, "opensrf.math", "opensrf.system.method.all.atomic");
    expect(results).toHaveLength(1);
    expect((results[0] as { api_name: string }[]).map((d) => d.api_name)).toEqual(MATH_NAMES);
  });

  test("cachable and a default symbol are reported", async () => {
    const svc = defineService({ methods: [{ name: "lookup", cachable: true, handler: () => 1 }] });
    const { results } = await call(svc, "opensrf.x", "opensrf.system.method", ["lookup"]);
    expect(results).toEqual([
      {
        api_name: "lookup",
        method: "lookup",
        service: "opensrf.x",
        notes: null,
        argc: 0,
        sysmethod: 0,
        atomic: 0,
        cachable: 1,
      },
      {
        api_name: "lookup.atomic",
        method: "lookup",
        service: "opensrf.x",
        notes: null,
        argc: 0,
        sysmethod: 0,
        atomic: 1,
        cachable: 1,
      },
    ]);
  });
});

describe("opensrf.system.method", () => {
  test("returns the methods whose names start with the prefix", async () => {
    const { results } = await call(math, "opensrf.math", "opensrf.system.method", ["opensrf.system.echo"]);
    expect(results.map((r) => (r as { api_name: string }).api_name)).toEqual([
      "opensrf.system.echo",
      "opensrf.system.echo.atomic",
    ]);
  });

  test("needs its prefix (argc 1): 404 as C", async () => {
    const { results, status } = await call(math, "opensrf.math", "opensrf.system.method");
    expect(results).toEqual([]);
    expect(status).toEqual({
      className: "osrfMethodException",
      status: "Not enough params for method opensrf.system.method / service opensrf.math",
      statusCode: 404,
    });
  });

  test("a prefix that is not a string matches nothing, as C", async () => {
    const { results, status } = await call(math, "opensrf.math", "opensrf.system.method", [42]);
    expect(results).toEqual([]);
    expect(status?.statusCode).toBe(205);
  });
});

describe("other system methods", () => {
  test("echo returns each param as its own RESULT; its twin as one array", async () => {
    const params = ["a", 1, null, { b: [true] }];
    expect((await call(math, "opensrf.math", "opensrf.system.echo", params)).results).toEqual(params);
    expect((await call(math, "opensrf.math", "opensrf.system.echo.atomic", params)).results).toEqual([params]);
    expect((await call(math, "opensrf.math", "opensrf.system.echo")).results).toEqual([]);
  });

  test("time returns integer epoch seconds", async () => {
    const before = Math.floor(Date.now() / 1000);
    const { results } = await call(math, "opensrf.math", "opensrf.system.time");
    // Bracketed by the clock read before and after the call, however long the call took.
    const after = Math.ceil(Date.now() / 1000);
    expect(results).toHaveLength(1);
    expect(Number.isInteger(results[0])).toBe(true);
    expect(results[0] as number).toBeGreaterThanOrEqual(before);
    expect(results[0] as number).toBeLessThanOrEqual(after);
  });

  test("method.all.summary gives one line per method, optionally by prefix", async () => {
    const { results } = await call(math, "opensrf.math", "opensrf.system.method.all.summary", ["add"]);
    expect(results).toEqual(["add(x, y) - Adds two numbers", "add.atomic(x, y) - Adds two numbers"]);
    const all = await call(math, "opensrf.math", "opensrf.system.method.all.summary");
    expect(all.results).toHaveLength(MATH_NAMES.length);
  });

  test("summary lines mark optional params and fall back to argN", () => {
    const reg = createRegistry(
      defineService({
        methods: [
          {
            name: "find",
            argc: 1,
            signature: {
              desc: "",
              params: [
                { name: "term", desc: "", type: "string" },
                { name: "limit", desc: "", type: "number" },
              ],
              return: { desc: "", type: "array" },
            },
            handler: () => [],
          },
          { name: "pair", argc: 2, handler: () => null },
        ],
      }),
    );
    expect(summarizeMethod(reg.get("find")!)).toBe("find(term, [limit])");
    expect(summarizeMethod(reg.get("pair")!)).toBe("pair(arg1, arg2)");
  });
});
