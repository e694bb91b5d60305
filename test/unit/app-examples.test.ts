import { describe, expect, jest, test } from "bun:test";
import cart from "../../examples/cart.ts";
import math from "../../examples/math.ts";
import stream from "../../examples/stream.ts";
import { createServiceHost, type ServiceDefinition, type ServiceHost } from "../../src/app/index.ts";
import { PartialAssembler } from "../../src/protocol/chunking.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { connect, request } from "../../src/protocol/messages.ts";
import type { JsonValue, OsrfMessage, StatusPayload } from "../../src/protocol/types.ts";
import { MemoryTransport, RecordingLogger, TableClient } from "../../src/testing/doubles.ts";

/** A host for `definition` and a function sending one stanza of messages on `thread`. */
function serve(definition: ServiceDefinition) {
  const transport = new MemoryTransport();
  const host: ServiceHost = createServiceHost({
    service: definition.name ?? "opensrf.x",
    definition,
    transport,
    client: new TableClient(),
    settings: { keepalive: 5, maxChunkSize: 51200, maxBundleSize: 25600 },
    logger: new RecordingLogger(),
    logProtect: [],
  });
  async function send(thread: string, msgs: OsrfMessage[]) {
    const from = transport.sent.length;
    await host.handle({
      to: transport.jid,
      from: "opensrf@localhost/_client",
      routerFrom: "",
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      thread,
      xid: "x",
      body: encodeBody(msgs),
    });
    const out = transport.sent.slice(from).flatMap((s) => decodeBody(s.body ?? ""));
    const assembler = new PartialAssembler();
    const results = out.flatMap((m) => {
      if (m.type !== "RESULT") return [];
      const a = assembler.add(m);
      return a.done ? [a.content] : [];
    });
    const statuses = out.flatMap((m): StatusPayload[] => (m.type === "STATUS" ? [m.payload] : []));
    return { results, status: statuses.at(-1) };
  }
  return {
    host,
    send,
    call: (method: string, params: JsonValue[] = []) => send(`t-${method}`, [request(1, method, params)]),
  };
}

describe("examples/math.ts", () => {
  const { call, host } = serve(math);

  test.each([
    ["add", [2, 2], 4],
    ["sub", [10, 4], 6],
    ["mult", [3, 2.5], 7.5],
    ["div", [9, 2], 4.5],
    // C reads params as text and converts with strtod.
    ["add", ["2", "2"], 4],
    ["add", ["1.5e1abc", "junk"], 15],
  ] as const)("%s %j → %j", async (method, params, expected) => {
    const { results, status } = await call(method, [...params]);
    expect(results).toEqual([expected]);
    expect(status?.statusCode).toBe(205);
  });

  test("argc 2, as in C", async () => {
    const { status } = await call("add", [1]);
    expect(status).toEqual({
      className: "osrfMethodException",
      status: "Not enough params for method add / service opensrf.math",
      statusCode: 404,
    });
  });

  test("division by zero is an exception, not C's invalid `inf`", async () => {
    const { results, status } = await call("div", [1, 0]);
    expect(results).toEqual([]);
    expect(status).toEqual({
      className: "osrfMethodException",
      status: "opensrf.math div: division by zero",
      statusCode: 400,
    });
  });

  test("params that are neither numbers nor strings fail as in C", async () => {
    for (const bad of [[1], null, true, { a: 1 }]) {
      const { status } = await call("add", [bad, 2]);
      expect(status).toEqual({
        className: "osrfMethodException",
        status: "An unknown server error occurred",
        statusCode: 404,
      });
    }
  });

  test("notes match C's osrf_math.c", async () => {
    const { results } = await call("opensrf.system.method", [""]);
    const notes = Object.fromEntries(
      (results as { api_name: string; notes: string | null }[]).map((d) => [d.api_name, d.notes]),
    );
    expect(notes).toMatchObject({
      add: "Adds two numbers",
      sub: "Subtracts two numbers",
      mult: "Multiplies two numbers",
      div: "Divides two numbers",
    });
    expect(host.service).toBe("opensrf.math");
  });
});

describe("examples/cart.ts", () => {
  test("keeps a cart per session", async () => {
    const { send } = serve(cart);
    await send("a", [connect(0)]);
    await send("b", [connect(0)]);
    expect((await send("a", [request(1, "add_item", ["tea", 3.1, 2])])).results).toEqual([1]);
    expect((await send("a", [request(2, "add_item", ["tea", 3.1])])).results).toEqual([1]);
    expect((await send("a", [request(3, "add_item", ["cup", 0.15])])).results).toEqual([2]);
    expect((await send("b", [request(1, "add_item", ["jam", 4])])).results).toEqual([1]);
    expect((await send("a", [request(4, "list", [])])).results).toEqual([
      [
        { name: "tea", price: 3.1, quantity: 3 },
        { name: "cup", price: 0.15, quantity: 1 },
      ],
    ]);
    expect((await send("a", [request(5, "total", [])])).results).toEqual([9.45]);
    expect((await send("b", [request(2, "total", [])])).results).toEqual([4]);
  });

  test("refuses to work without CONNECT, with a clear error", async () => {
    const { call } = serve(cart);
    for (const method of ["add_item", "list", "total"]) {
      const { status } = await call(method, method === "add_item" ? ["tea", 1] : []);
      expect(status).toEqual({
        className: "osrfMethodException",
        status: `opensrf.cart ${method} needs a stateful session: CONNECT first, then call it on the same thread`,
        statusCode: 400,
      });
    }
  });

  test("validates items", async () => {
    const { send } = serve(cart);
    await send("s", [connect(0)]);
    for (const params of [
      ["", 1],
      ["tea", -1],
      ["tea", "1"],
      ["tea", 1, 0],
      ["tea", 1, 1.5],
    ] as JsonValue[][]) {
      const { status } = await send("s", [request(1, "add_item", params)]);
      expect(status).toMatchObject({ className: "osrfMethodException", statusCode: 400 });
    }
  });
});

describe("examples/stream.ts", () => {
  const { call } = serve(stream);

  test("count streams 1..n; count 0 sends none", async () => {
    expect((await call("count", [5])).results).toEqual([1, 2, 3, 4, 5]);
    expect((await call("count", [0])).results).toEqual([]);
    expect((await call("count", [-1])).status).toMatchObject({ statusCode: 400 });
  });

  test("big returns a string of the requested length (as partial messages)", async () => {
    const { results } = await call("big", [70_000]);
    expect(results).toEqual(["x".repeat(70_000)]);
  });

  test("slow answers once its wait is over, not before, with its argument", async () => {
    jest.useFakeTimers();
    try {
      let answered = false;
      const reply = call("slow", [30]).then((r) => {
        answered = true;
        return r;
      });
      // Let the handler run up to its timer.
      for (let i = 0; i < 1000 && jest.getTimerCount() === 0; i++) await Promise.resolve();
      expect(jest.getTimerCount()).toBe(1);
      jest.advanceTimersByTime(29);
      for (let i = 0; i < 100; i++) await Promise.resolve();
      expect(answered).toBe(false);
      jest.advanceTimersByTime(1);
      expect((await reply).results).toEqual([30]);
    } finally {
      jest.useRealTimers();
    }
  });

  test("fail and bad_json end in exceptions", async () => {
    expect((await call("fail")).status).toMatchObject({ className: "osrfMethodException", statusCode: 500 });
    expect((await call("bad_json", ["nothing"])).status).toMatchObject({ statusCode: 400 });
    expect((await call("bad_json")).status?.status).toBe(
      "Result of method [bad_json] is not JSON-serializable: a BigInt at answer",
    );
  });

  test("hang never answers", async () => {
    const { host, send } = serve(stream);
    let settled = false;
    void send("h", [request(1, "hang", [])]).then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false);
    await host.close(0);
  });
});
