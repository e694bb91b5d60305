/**
 * `osrf-prefork/testing`: an author's service called in-process through the real host and
 * the real client, with the answers and failures a real caller sees.
 */
import { afterEach, describe, expect, test } from "bun:test";
import cart from "../../examples/cart.ts";
import math from "../../examples/math.ts";
import { defineMethod, defineService, type JsonValue, MethodException, StatusCode } from "../../src/app/index.ts";
import { MethodError, type TestService, testService } from "../../src/testing/index.ts";

const open: TestService[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});
function serve(...args: Parameters<typeof testService>): TestService {
  const t = testService(...args);
  open.push(t);
  return t;
}

/** Resolves with the error `p` rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<MethodError> {
  const e = await p.then(
    (v) => {
      throw new Error(`expected a failure, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(MethodError);
  return e as MethodError;
}

/** A gate a handler waits at until the test opens it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

const demo = defineService({
  name: "test.demo",
  methods: [
    { name: "echo", handler: (_ctx, ...params) => params },
    { name: "nothing", handler: () => undefined },
    { name: "two", argc: 2, handler: (_ctx, a, b) => [a, b] },
    {
      name: "responds",
      handler(ctx) {
        ctx.respond("a");
        ctx.respond("b");
        return "c";
      },
    },
    { name: "big", argc: 1, handler: (_ctx, n) => "x".repeat(Number(n)) },
    { name: "boom", handler: () => Promise.reject(new Error("kaboom")) },
    { name: "refuse", handler: () => Promise.reject(new MethodException(StatusCode.FORBIDDEN, "not for you")) },
    { name: "bigint", handler: () => ({ price: 10n }) },
    { name: "whoami", handler: (ctx) => ({ locale: ctx.locale, ingress: ctx.ingress ?? null, service: ctx.service }) },
    {
      name: "logs",
      handler(ctx) {
        ctx.log.info("hello from logs");
        return ctx.xid;
      },
    },
  ],
});

describe("stateless calls", () => {
  test("results, in order; a method returning nothing gives []", async () => {
    const t = serve(demo);
    expect(await t.call("echo", 1, "two", { three: [3] })).toEqual([[1, "two", { three: [3] }]]);
    expect(await t.call("nothing")).toEqual([]);
    expect(await t.call("responds")).toEqual(["a", "b", "c"]);
    expect(await serve(math).call("add", 2, 2)).toEqual([4]);
  });

  test(".atomic gathers every result into one array", async () => {
    const t = serve(demo);
    expect(await t.call("responds.atomic")).toEqual([["a", "b", "c"]]);
  });

  test("the system methods answer too", async () => {
    const t = serve(demo);
    expect(await t.call("opensrf.system.echo", "x", 2)).toEqual(["x", 2]);
    const [described] = await t.call("opensrf.system.method", "two");
    expect(described).toMatchObject({ api_name: "two", argc: 2, service: "test.demo" });
  });

  test("a result over max_chunk_size travels as partials and arrives whole", async () => {
    const t = serve(demo, { settings: { maxChunkSize: 1024 } });
    const [s] = await t.call("big", 10_000);
    expect(s).toBe("x".repeat(10_000));
  });

  test("request() streams: the first result arrives before the handler yields the second", async () => {
    const g = gate();
    const t = serve(
      defineService({
        name: "test.stream",
        methods: [
          {
            name: "slowly",
            async *handler() {
              yield 1;
              await g.opened;
              yield 2;
            },
          },
        ],
      }),
    );
    const seen: JsonValue[] = [];
    for await (const r of t.request("slowly")) {
      seen.push(r);
      if (r === 1) {
        expect(seen).toEqual([1]);
        g.open();
      }
    }
    expect(seen).toEqual([1, 2]);
  });

  test("headers reach the handler: locale (default en-US) and ingress", async () => {
    const t = serve(demo);
    expect(await t.request("whoami", [], { locale: "fr-CA", ingress: "tests" }).first()).toEqual({
      locale: "fr-CA",
      ingress: "tests",
      service: "test.demo",
    });
    expect(await t.request("whoami").first()).toMatchObject({ locale: "en-US", ingress: null });
  });

  test("the service's log lines are kept, with the request's xid", async () => {
    const t = serve(demo);
    const [xid] = await t.call("logs");
    expect(t.logs).toContainEqual({ level: "info", msg: "hello from logs", xid: xid as string, service: "test.demo" });
  });
});

describe("failures are the statuses a real caller gets", () => {
  test("unknown method: 404 with C's text", async () => {
    const e = await failure(serve(demo).call("no.such"));
    expect([e.statusCode, e.status, e.className]).toEqual([
      404,
      "Method [no.such] not found for service test.demo",
      "osrfMethodException",
    ]);
    expect(e.method).toBe("no.such");
  });

  test("fewer params than argc: 404 with C's text", async () => {
    const e = await failure(serve(demo).call("two", 1));
    expect([e.statusCode, e.status]).toEqual([404, "Not enough params for method two / service test.demo"]);
  });

  test("a handler that throws: 500 naming the method, session and thread trace, then the message", async () => {
    const e = await failure(serve(demo).call("boom"));
    expect(e.statusCode).toBe(500);
    expect(e.status).toMatch(/^ \*\*\* Call to \[boom\] failed for session \[[^\]]+\], thread trace \[1\]:\nkaboom\n$/);
  });

  test("a MethodException keeps its code and text", async () => {
    const e = await failure(serve(demo).call("refuse"));
    expect([e.statusCode, e.status]).toEqual([403, "not for you"]);
    expect(e.message).toBe("test.demo refuse: 403 not for you");
  });

  test("a result that is not JSON: 500 naming the method and the value", async () => {
    const e = await failure(serve(demo).call("bigint"));
    expect(e.statusCode).toBe(500);
    expect(e.status).toContain("Result of method [bigint] is not JSON-serializable: a BigInt at price");
  });

  test("request() fails with MethodError too, whether iterated or collected", async () => {
    const t = serve(demo);
    await failure(t.request("refuse").collect());
    const iterated = (async () => {
      for await (const _ of t.request("no.such")) throw new Error("no result expected");
    })();
    expect((await failure(iterated)).statusCode).toBe(404);
  });
});

describe("CONNECT sessions", () => {
  test("state lives from CONNECT to DISCONNECT, one per session", async () => {
    const t = serve(cart);
    const a = await t.session();
    const b = await t.session();
    expect(a.connected).toBe(true);
    expect(await a.call("add_item", "apple", 0.5, 3)).toEqual([1]);
    expect(await a.call("add_item", "pear", 1)).toEqual([2]);
    expect(await b.call("add_item", "fig", 2)).toEqual([1]);
    expect(await a.call("total")).toEqual([2.5]);
    expect(await b.call("list")).toEqual([[{ name: "fig", price: 2, quantity: 1 }]]);
    expect(t.host.activeSessions()).toBe(2);

    await a.disconnect();
    expect(a.connected).toBe(false);
    expect(a.ended).toBe("disconnect");
    expect(b.ended).toBeUndefined();
    expect(t.host.activeSessions()).toBe(1);
    // After DISCONNECT the thread is served statelessly, as C does: the cart is gone.
    expect((await failure(a.call("total"))).status).toContain("needs a stateful session");
  });

  test("without CONNECT there is no session state", async () => {
    const e = await failure(serve(cart).call("add_item", "apple", 1));
    expect([e.statusCode, e.status]).toEqual([
      400,
      "opensrf.cart add_item needs a stateful session: CONNECT first, then call it on the same thread",
    ]);
  });

  test("keepalive: idle for `keepalive` seconds, the session is dropped with a 408", async () => {
    const t = serve(cart, { settings: { keepalive: 3 } });
    const s = await t.session();
    await s.call("add_item", "apple", 1);
    await t.advance(2.9);
    expect(await s.call("total")).toEqual([1]); // a request restarts the idle time
    await t.advance(2.9);
    expect(s.connected).toBe(true);
    await t.advance(0.1);
    expect(s.ended).toBe("timeout");
    expect(s.connected).toBe(false);
    expect(t.host.activeSessions()).toBe(0);
    expect(t.logs.some((l) => l.msg.startsWith("No request was received in 3 seconds"))).toBe(true);
    // The caller falls back to stateless requests: the cart is gone.
    expect((await failure(s.call("total"))).statusCode).toBe(400);
  });

  test("keepalive counts idle time only: a long request does not time out its session", async () => {
    const g = gate();
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const t = serve(
      defineService({
        name: "test.long",
        methods: [
          {
            name: "long",
            async handler() {
              started();
              await g.opened;
              return "done";
            },
          },
        ],
      }),
      { settings: { keepalive: 1 } },
    );
    const s = await t.session();
    const result = s.call("long");
    await running;
    await t.advance(10);
    expect(s.connected).toBe(true);
    g.open();
    expect(await result).toEqual(["done"]);
    await t.advance(1);
    expect(s.ended).toBe("timeout");
  });
});

describe("ctx.call to other services", () => {
  const search = defineMethod<[JsonValue]>({
    name: "book.with_holdings",
    argc: 1,
    async handler(ctx, id) {
      const holdings = await ctx.call("open-ils.search", "holdings", id).collect();
      return { id, holdings };
    },
  });
  const guarded = defineMethod({
    name: "book.guarded",
    async handler(ctx) {
      try {
        return await ctx.call("open-ils.auth", "check").first();
      } catch (e) {
        const err = e as { statusCode?: number; statusText?: string };
        return { failed: err.statusCode ?? null, text: err.statusText ?? null };
      }
    },
  });
  const books = defineService({ name: "test.books", methods: [search, guarded] });

  test("is answered from the calls table and recorded, with the request's xid", async () => {
    const t = serve(books, { calls: { "open-ils.search": { holdings: (id) => [{ copy: 1, of: id }, { copy: 2 }] } } });
    expect(await t.call("book.with_holdings", 7)).toEqual([{ id: 7, holdings: [{ copy: 1, of: 7 }, { copy: 2 }] }]);
    expect(t.outbound).toHaveLength(1);
    expect(t.outbound[0]).toMatchObject({ service: "open-ils.search", method: "holdings", params: [7] });
    expect(t.outbound[0]?.opts?.xid).toMatch(/\S/);
  });

  test("a fake that throws a MethodException fails the call with that status", async () => {
    const t = serve(books, {
      calls: {
        "open-ils.auth": {
          check: () => {
            throw new MethodException(401, "no session");
          },
        },
      },
    });
    expect(await t.call("book.guarded")).toEqual([{ failed: 401, text: "no session" }]);
  });

  test("a call the table does not answer fails with the fix in the message", async () => {
    const e = await failure(serve(books).call("book.with_holdings", 1));
    expect(e.statusCode).toBe(500);
    expect(e.status).toContain(
      'ctx.call("open-ils.search", "holdings") has no answer: add calls["open-ils.search"]["holdings"] to the calls of testService',
    );
  });

  test("a function answers every call", async () => {
    const t = serve(books, { calls: (c) => [`${c.service} ${c.method} ${JSON.stringify(c.params)}`] });
    expect(await t.call("book.with_holdings", 3)).toEqual([{ id: 3, holdings: ["open-ils.search holdings [3]"] }]);
  });
});

describe("lifecycle and set-up", () => {
  test("init then childInit run once before the first call; close runs childExit", async () => {
    const events: string[] = [];
    const t = serve(
      defineService({
        name: "test.life",
        methods: [{ name: "events", handler: () => events }],
        init: ({ service }) => void events.push(`init ${service}`),
        childInit: async ({ client }) => {
          events.push(`childInit ${client ? "with client" : "without client"}`);
        },
        childExit: () => void events.push("childExit"),
      }),
    );
    expect(await t.call("events")).toEqual([["init test.life", "childInit with client"]]);
    await t.call("events");
    await t.close();
    await t.close();
    expect(events).toEqual(["init test.life", "childInit with client", "childExit"]);
  });

  test("a failing init fails every call with its error; lifecycle: false skips the hooks", async () => {
    const failing = defineService({
      name: "test.broken",
      methods: [{ name: "ping", handler: () => "pong" }],
      init() {
        throw new Error("no database");
      },
    });
    await expect(serve(failing).call("ping")).rejects.toThrow("no database");
    expect(await serve(failing, { lifecycle: false }).call("ping")).toEqual(["pong"]);
  });

  test("the service name: the definition's, or the one given; none is a clear error", async () => {
    const nameless = { methods: [{ name: "who", handler: (ctx: { service: string }) => ctx.service }] };
    expect(() => testService(nameless)).toThrow(
      'testService: the service has no name; pass one, e.g. testService(svc, { service: "my.service" })',
    );
    expect(await serve(nameless, { service: "my.svc" }).call("who")).toEqual(["my.svc"]);
    expect(() => testService({ methods: [{ name: "x", argc: -1, handler: () => 1 }] }, { service: "s" })).toThrow(
      TypeError,
    );
  });
});
