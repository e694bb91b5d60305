import { afterEach, describe, expect, test } from "bun:test";
import cart from "../../examples/cart.ts";
import math from "../../examples/math.ts";
import stream from "../../examples/stream.ts";
import {
  createServiceHost,
  defineService,
  type HostSettings,
  MethodException,
  type ServiceDefinition,
  type ServiceHost,
  type ServiceHostOptions,
  type SessionEndReason,
} from "../../src/app/index.ts";
import { PartialAssembler } from "../../src/protocol/chunking.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { connect, disconnect, request } from "../../src/protocol/messages.ts";
import type { JsonValue, OsrfMessage, ResultMessage } from "../../src/protocol/types.ts";
import { MemoryTransport, RecordingLogger, TableClient } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";
import type { Stanza } from "../../src/xmpp/types.ts";

// Addresses and ids of samples F–K of the OpenSRF 3.3.0 capture.
const CALLER = "opensrf@localhost/_vm_1795547651.056703_28979";
const ROUTER = "router@localhost/opensrf.math";
const DRONE = "opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594";

const COMPLETE_205 =
  '{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}';

const SAMPLE_H =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
  '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":4}}}},' +
  `${COMPLETE_205}]`;

const SAMPLE_I =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
  '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":"hello"}}}},' +
  '{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
  '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":42}}}},' +
  `${COMPLETE_205}]`;

const SAMPLE_J_CONNECTED =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Connection Successful","statusCode":"200"}}}}]';

const SAMPLE_K =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfMethodException","__p":{"status":"Method [no.such.method] not found for service ' +
  'opensrf.math","statusCode":"404"}}}}]';

const TIMEOUT_408 =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Disconnected on timeout","statusCode":"408"}}}}]';

const DEFAULTS: HostSettings = { keepalive: 5, maxChunkSize: 51200, maxBundleSize: 25600 };

interface Rig {
  host: ServiceHost;
  transport: MemoryTransport;
  logger: RecordingLogger;
  client: TableClient;
  ended: [string, SessionEndReason][];
  /** Every message sent so far, in order, with the index of the body it travelled in. */
  messages(): (OsrfMessage & { body: number })[];
}

const hosts: ServiceHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close(0)));
});

function rig(
  definition: ServiceDefinition,
  opts: {
    service?: string;
    settings?: Partial<HostSettings>;
    logProtect?: string[];
    clock?: ManualClock;
  } & Pick<ServiceHostOptions, "onRequestDone" | "onFinalReply"> = {},
): Rig {
  const transport = new MemoryTransport(DRONE);
  const logger = new RecordingLogger();
  const client = new TableClient(() => ["from dbmath"]);
  const host = createServiceHost({
    service: opts.service ?? definition.name ?? "opensrf.test",
    definition,
    transport,
    client,
    settings: { ...DEFAULTS, ...opts.settings },
    logger,
    logProtect: opts.logProtect ?? [],
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.onRequestDone ? { onRequestDone: opts.onRequestDone } : {}),
    ...(opts.onFinalReply ? { onFinalReply: opts.onFinalReply } : {}),
  });
  hosts.push(host);
  const ended: [string, SessionEndReason][] = [];
  host.onSessionEnd((thread, reason) => ended.push([thread, reason]));
  return {
    host,
    transport,
    logger,
    client,
    ended,
    messages: () => transport.sent.flatMap((s, body) => decodeBody(s.body ?? "").map((m) => ({ ...m, body }))),
  };
}

let threadCounter = 0;
function newThread(): string {
  return `1795547651.0${String(++threadCounter).padStart(5, "0")}.179554765128979`;
}

/** A stanza as the router forwards it (router_from = caller), or direct when `direct`. */
function stanza(thread: string, msgs: OsrfMessage[], opts: { direct?: boolean; xid?: string } = {}): Stanza {
  return {
    to: DRONE,
    from: opts.direct ? CALLER : ROUTER,
    routerFrom: opts.direct ? "" : CALLER,
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    thread,
    xid: opts.xid ?? "1795547651289791",
    body: encodeBody(msgs),
  };
}

function req(method: string, params: JsonValue[], trace = 1, header: { locale?: string; tz?: string } = {}) {
  return request(trace, method, params, { ingress: "srfsh", ...header });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("REQUEST", () => {
  test("replies as the C drone in sample H: RESULT and 205 bundled, to router_from", async () => {
    const r = rig(math);
    const thread = newThread();
    const out = await r.host.handle(stanza(thread, [req("add", [2, 2])]));
    expect(out).toEqual({ session: "none", thread });
    expect(r.transport.sent).toEqual([{ from: DRONE, to: CALLER, thread, xid: "1795547651289791", body: SAMPLE_H }]);
  });

  test("answers `from` when there is no router_from", async () => {
    const r = rig(math);
    await r.host.handle(stanza(newThread(), [req("add", [1, 1])], { direct: true }));
    expect(r.transport.sent[0]?.to).toBe(CALLER);
  });

  test("opensrf.system.echo bundles one RESULT per param then 205 (sample I)", async () => {
    const r = rig(math);
    await r.host.handle(stanza(newThread(), [req("opensrf.system.echo", ["hello", 42])]));
    expect(r.transport.sent.map((s) => s.body)).toEqual([SAMPLE_I]);
  });

  test("copies locale and tz into the replies, never ingress", async () => {
    const r = rig(math);
    await r.host.handle(stanza(newThread(), [req("add", [1, 2], 7, { locale: "fr-CA", tz: "America/Toronto" })]));
    const msgs = r.messages();
    expect(msgs.map((m) => [m.type, m.threadTrace, m.locale, m.tz, m.ingress, m.apiLevel])).toEqual([
      ["RESULT", 7, "fr-CA", "America/Toronto", undefined, 1],
      ["STATUS", 7, "fr-CA", "America/Toronto", undefined, 1],
    ]);
  });

  test("serves every REQUEST of a bundled body in order", async () => {
    const r = rig(math);
    await r.host.handle(stanza(newThread(), [req("add", [1, 1], 1), req("mult", [3, 3], 2)]));
    expect(r.messages().map((m) => [m.type, m.threadTrace, m.type === "RESULT" ? m.payload.content : m.type])).toEqual([
      ["RESULT", 1, 2],
      ["STATUS", 1, "STATUS"],
      ["RESULT", 2, 9],
      ["STATUS", 2, "STATUS"],
    ]);
  });

  test("serve() answers a plain-value handler before it returns; a waiting one gets a promise", async () => {
    const svc = defineService({
      name: "opensrf.mixed",
      methods: [
        { name: "now", handler: () => 1 },
        {
          name: "later",
          handler: async () => {
            await sleep(5);
            return 2;
          },
        },
      ],
    });
    const r = rig(svc);
    const now = r.host.serve(stanza(newThread(), [req("now", [])]));
    expect(now).not.toBeInstanceOf(Promise);
    expect(now).toMatchObject({ session: "none" });
    expect(r.transport.sent).toHaveLength(1); // RESULT and 205, already written
    const later = r.host.serve(stanza(newThread(), [req("later", [])]));
    expect(later).toBeInstanceOf(Promise);
    expect(r.transport.sent).toHaveLength(1);
    expect(await later).toMatchObject({ session: "none" });
    expect(r.messages().map((m) => (m.type === "RESULT" ? m.payload.content : m.type))).toEqual([
      1,
      "STATUS",
      2,
      "STATUS",
    ]);
  });

  test("a body of requests, one of them waiting: all answered in order, each timed once", async () => {
    const done: [string, number][] = [];
    const svc = defineService({
      name: "opensrf.mixed",
      methods: [
        { name: "now", handler: (_ctx, n: number) => n },
        {
          name: "later",
          handler: async (_ctx, n: number) => {
            await sleep(5);
            return n;
          },
        },
      ],
    });
    const { host, transport } = rig(svc, { onRequestDone: (method, status) => void done.push([method, status]) });
    const outcome = host.serve(
      stanza(newThread(), [req("now", [1], 1), req("later", [2], 2), req("now", [3], 3), req("later", [4], 4)]),
    );
    expect(outcome).toBeInstanceOf(Promise);
    expect(done).toEqual([["now", 205]]); // the first is answered before serve() returns
    await outcome;
    const got = transport.sent.flatMap((s) => decodeBody(s.body ?? ""));
    expect(got.map((m) => [m.type, m.threadTrace])).toEqual([
      ["RESULT", 1],
      ["STATUS", 1],
      ["RESULT", 2],
      ["STATUS", 2],
      ["RESULT", 3],
      ["STATUS", 3],
      ["RESULT", 4],
      ["STATUS", 4],
    ]);
    expect(done).toEqual([
      ["now", 205],
      ["later", 205],
      ["now", 205],
      ["later", 205],
    ]);
  });

  test("a result responded before the handler's first wait is sent while it waits", async () => {
    const svc = defineService({
      name: "opensrf.slow",
      methods: [
        {
          name: "first.then.wait",
          handler: async (ctx) => {
            ctx.respond("first");
            await sleep(80);
            return "second";
          },
        },
      ],
    });
    const r = rig(svc);
    const done = r.host.handle(stanza(newThread(), [req("first.then.wait", [])]));
    await sleep(30);
    expect(r.messages().map((m) => (m.type === "RESULT" ? m.payload.content : m.type))).toEqual(["first"]);
    await done;
    expect(r.messages().map((m) => (m.type === "RESULT" ? m.payload.content : m.type))).toEqual([
      "first",
      "second",
      "STATUS",
    ]);
  });

  test("a method returning undefined sends only the 205", async () => {
    const svc = defineService({ name: "opensrf.void", methods: [{ name: "nothing", handler: () => undefined }] });
    const r = rig(svc);
    await r.host.handle(stanza(newThread(), [req("nothing", [])]));
    const msgs = r.messages();
    expect(msgs).toHaveLength(1);
    expect(msgs[0]?.type).toBe("STATUS");
  });

  test("logs one activity line per request with the xid, params redacted by log_protect", async () => {
    const r = rig(math, { logProtect: ["mult"] });
    await r.host.handle(stanza(newThread(), [req("add", [2, 2])], { xid: "x1" }));
    await r.host.handle(stanza(newThread(), [req("mult", [3, 4])], { xid: "x2" }));
    const act = r.logger.lines.filter((l) => l.level === "activity");
    expect(act).toEqual([
      { level: "activity", msg: "Running opensrf.math add [ 2,2 ]", xid: "x1", service: "test" },
      { level: "activity", msg: "Running opensrf.math mult [ **PARAMS REDACTED** ]", xid: "x2", service: "test" },
    ]);
  });
});

describe("exceptions", () => {
  test("unknown method: osrfMethodException 404 exactly as sample K, no 205", async () => {
    const r = rig(math);
    await r.host.handle(stanza(newThread(), [req("no.such.method", [1])]));
    expect(r.transport.sent.map((s) => s.body)).toEqual([SAMPLE_K]);
  });

  test("too few params: 404 with C's text, handler not run", async () => {
    let ran = false;
    const svc = defineService({
      name: "opensrf.math",
      methods: [
        {
          name: "add",
          argc: 2,
          handler: () => {
            ran = true;
            return 0;
          },
        },
      ],
    });
    const r = rig(svc);
    await r.host.handle(stanza(newThread(), [req("add", [1])]));
    expect(ran).toBe(false);
    const [m] = r.messages();
    expect(m?.type === "STATUS" && m.payload).toEqual({
      className: "osrfMethodException",
      status: "Not enough params for method add / service opensrf.math",
      statusCode: 404,
    });
  });

  test("a throwing handler: 500 with Perl's text, and the host keeps serving", async () => {
    const r = rig(stream);
    const thread = newThread();
    await r.host.handle(stanza(thread, [req("fail", [], 3)]));
    await r.host.handle(stanza(newThread(), [req("count", [1])]));
    const msgs = r.messages();
    expect(msgs[0]).toMatchObject({
      type: "STATUS",
      threadTrace: 3,
      payload: {
        className: "osrfMethodException",
        statusCode: 500,
        status: ` *** Call to [fail] failed for session [${thread}], thread trace [3]:\nopensrf.stream fail: failing as asked\n`,
      },
    });
    expect(msgs.filter((m) => m.body === 0)).toHaveLength(1);
    expect(msgs.slice(1).map((m) => m.type)).toEqual(["RESULT", "STATUS"]);
    expect(r.logger.lines.some((l) => l.level === "error" && l.msg.includes("failing as asked"))).toBe(true);
  });

  test("MethodException chooses the code and text", async () => {
    const svc = defineService({
      methods: [{ name: "nope", handler: () => Promise.reject(new MethodException(403, "Permission denied")) }],
    });
    const r = rig(svc, { service: "opensrf.x" });
    await r.host.handle(stanza(newThread(), [req("nope", [])]));
    const [m] = r.messages();
    expect(m?.type === "STATUS" && m.payload).toEqual({
      className: "osrfMethodException",
      status: "Permission denied",
      statusCode: 403,
    });
  });

  test.each([
    ["bigint", "a BigInt at answer"],
    ["cycle", "a cycle at self"],
    ["function", "a function at [1]"],
  ])("a result that is not JSON (%s) is refused naming the method", async (kind, where) => {
    const r = rig(stream);
    await r.host.handle(stanza(newThread(), [req("bad_json", [kind])]));
    const msgs = r.messages();
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatchObject({
      type: "STATUS",
      payload: {
        className: "osrfMethodException",
        statusCode: 500,
        status: `Result of method [bad_json] is not JSON-serializable: ${where}`,
      },
    });
  });

  test("results streamed before a failure are sent before the exception", async () => {
    const svc = defineService({
      methods: [
        {
          name: "half",
          async *handler() {
            yield 1;
            yield 2;
            throw new Error("broke");
          },
        },
      ],
    });
    const r = rig(svc, { service: "opensrf.x" });
    await r.host.handle(stanza(newThread(), [req("half", [])]));
    expect(r.messages().map((m) => [m.type, m.body])).toEqual([
      ["RESULT", 0],
      ["RESULT", 0],
      ["STATUS", 0],
    ]);
  });

  test("a reply the transport refuses becomes an exception instead of a 205", async () => {
    const svc = defineService({ methods: [{ name: "big", handler: () => "x".repeat(60_000) }] });
    const r = rig(svc, { service: "opensrf.x" });
    const realSend = r.transport.send.bind(r.transport);
    let calls = 0;
    r.transport.send = (s) => {
      if (calls++ === 0) throw new Error("stanza too large");
      realSend(s);
    };
    await r.host.handle(stanza(newThread(), [req("big", [])]));
    const msgs = r.messages();
    expect(msgs.at(-1)).toMatchObject({
      type: "STATUS",
      payload: {
        className: "osrfMethodException",
        statusCode: 500,
        status: "Unable to send the results of [big]: stanza too large",
      },
    });
    expect(msgs.some((m) => m.type === "STATUS" && m.payload.statusCode === 205)).toBe(false);
    expect(r.logger.lines.some((l) => l.level === "error" && l.msg.includes("stanza too large"))).toBe(true);
  });
});

describe("bundling, streaming and chunking", () => {
  test("100 streamed results and the 205 share one body under the bundle size", async () => {
    const r = rig(stream);
    await r.host.handle(stanza(newThread(), [req("count", [100])]));
    expect(r.transport.sent).toHaveLength(1);
    const msgs = r.messages();
    expect(
      msgs.map((m) => (m.type === "RESULT" ? m.payload.content : m.type === "STATUS" && m.payload.statusCode)),
    ).toEqual([...Array.from({ length: 100 }, (_, i) => i + 1), 205]);
    expect((r.transport.sent[0]?.body ?? "").length).toBeLessThan(25600);
  });

  test("bodies are flushed before they reach maxBundleSize", async () => {
    const r = rig(stream, { settings: { maxBundleSize: 1000 } });
    await r.host.handle(stanza(newThread(), [req("count", [100])]));
    expect(r.transport.sent.length).toBeGreaterThan(10);
    for (const s of r.transport.sent) expect((s.body ?? "").length).toBeLessThan(1000);
    const msgs = r.messages();
    expect(msgs).toHaveLength(101);
    expect(msgs.at(-1)?.type).toBe("STATUS");
  });

  test("a handler that waits between results streams them before it finishes", async () => {
    const r = rig(stream);
    const done = r.host.handle(stanza(newThread(), [req("count", [3, 60])]));
    await sleep(30);
    expect(r.messages().map((m) => m.type)).toEqual(["RESULT"]);
    await done;
    expect(r.messages().map((m) => m.type)).toEqual(["RESULT", "RESULT", "RESULT", "STATUS"]);
    expect(r.transport.sent).toHaveLength(3); // the last result shares its body with the 205
  });

  test("ctx.respond and a returned value both become results, in order", async () => {
    const svc = defineService({
      methods: [
        {
          name: "mixed",
          handler(ctx) {
            ctx.respond("a");
            ctx.respond(undefined);
            return ["b"];
          },
        },
      ],
    });
    const r = rig(svc, { service: "opensrf.x" });
    await r.host.handle(stanza(newThread(), [req("mixed", [])]));
    expect(r.messages().map((m) => (m.type === "RESULT" ? m.payload.content : "205"))).toEqual([
      "a",
      null,
      ["b"],
      "205",
    ]);
  });

  test("a sync generator streams too; a respond after the request ended is dropped", async () => {
    let late: (() => void) | undefined;
    const svc = defineService({
      methods: [
        {
          name: "gen",
          *handler(ctx) {
            late = () => ctx.respond("late");
            yield "a";
            yield "b";
          },
        },
      ],
    });
    const r = rig(svc, { service: "opensrf.x" });
    await r.host.handle(stanza(newThread(), [req("gen", [])]));
    late?.();
    await sleep(5);
    expect(r.messages().map((m) => (m.type === "RESULT" ? m.payload.content : "205"))).toEqual(["a", "b", "205"]);
    expect(r.logger.lines.some((l) => l.level === "warn" && l.msg.includes("after the request ended"))).toBe(true);
  });

  test("a 1 MB result travels as partial messages, each alone, and reassembles", async () => {
    const r = rig(stream);
    await r.host.handle(stanza(newThread(), [req("big", [1_000_000])]));
    const msgs = r.messages();
    const partials = msgs.filter((m) => m.type === "RESULT" && m.payload.className === "osrfResultPartial");
    expect(partials.length).toBeGreaterThanOrEqual(Math.ceil(1_000_002 / 51200));
    for (const p of partials) {
      expect(p).toMatchObject({ threadTrace: 1, payload: { status: "Partial Response", statusCode: 206 } });
    }
    expect(msgs.at(-2)).toMatchObject({
      type: "RESULT",
      payload: { className: "osrfResultPartialComplete", status: "Partial Response Finalized", statusCode: 204 },
    });
    expect(msgs.at(-1)).toMatchObject({ type: "STATUS", payload: { statusCode: 205 } });
    // Each partial in its own body; the 205 follows in its own.
    expect(r.transport.sent).toHaveLength(partials.length + 2);
    for (const s of r.transport.sent) expect((s.body ?? "").length).toBeLessThan(52_000);

    const assembler = new PartialAssembler();
    const results: JsonValue[] = [];
    for (const m of msgs) {
      if (m.type !== "RESULT") continue;
      const a = assembler.add(m as ResultMessage);
      if (a.done) results.push(a.content);
    }
    expect(results).toEqual(["x".repeat(1_000_000)]);
  });

  test("results bundled before a large one are flushed first, in their own body", async () => {
    const svc = defineService({
      methods: [
        {
          name: "small_then_big",
          handler(ctx) {
            ctx.respond("small");
            return "y".repeat(200_000);
          },
        },
      ],
    });
    const r = rig(svc, { service: "opensrf.x" });
    await r.host.handle(stanza(newThread(), [req("small_then_big", [])]));
    const msgs = r.messages();
    expect(msgs[0]).toMatchObject({ type: "RESULT", body: 0, payload: { className: "osrfResult", content: "small" } });
    expect(msgs.filter((m) => m.body === 0)).toHaveLength(1);
    expect(msgs[1]).toMatchObject({ body: 1, payload: { className: "osrfResultPartial" } });
  });

  test(".atomic collects 100 streamed results into one array RESULT, then 205", async () => {
    const r = rig(stream);
    await r.host.handle(stanza(newThread(), [req("count.atomic", [100])]));
    expect(r.transport.sent).toHaveLength(1);
    const msgs = r.messages();
    expect(msgs).toHaveLength(2);
    expect(msgs[0]).toMatchObject({
      type: "RESULT",
      payload: { className: "osrfResult", content: Array.from({ length: 100 }, (_, i) => i + 1) },
    });
    expect(msgs[1]).toMatchObject({ type: "STATUS", payload: { statusCode: 205 } });
  });

  test(".atomic of a single-value method wraps it in an array; of no value, an empty one", async () => {
    const svc = defineService({ methods: [{ name: "nothing", handler: () => undefined }] });
    const r = rig(math);
    await r.host.handle(stanza(newThread(), [req("add.atomic", [2, 2])]));
    expect(r.messages()[0]).toMatchObject({ payload: { content: [4] } });
    const r2 = rig(svc, { service: "opensrf.x" });
    await r2.host.handle(stanza(newThread(), [req("nothing.atomic", [])]));
    expect(r2.messages()[0]).toMatchObject({ payload: { content: [] } });
  });

  test("a large .atomic result is chunked too", async () => {
    const r = rig(stream);
    await r.host.handle(stanza(newThread(), [req("big.atomic", [120_000])]));
    const msgs = r.messages();
    expect(msgs[0]).toMatchObject({ payload: { className: "osrfResultPartial" } });
    const assembler = new PartialAssembler();
    let content: JsonValue | undefined;
    for (const m of msgs) {
      if (m.type !== "RESULT") continue;
      const a = assembler.add(m as ResultMessage);
      if (a.done) content = a.content;
    }
    expect(content).toEqual(["x".repeat(120_000)]);
  });
});

describe("stateful sessions", () => {
  test("CONNECT answers 200 as in sample J; requests share state; DISCONNECT ends it silently", async () => {
    const r = rig(cart);
    const thread = newThread();
    const out1 = await r.host.handle(stanza(thread, [connect(0)]));
    expect(out1).toEqual({ session: "open", thread });
    expect(r.transport.sent).toEqual([
      { from: DRONE, to: CALLER, thread, xid: "1795547651289791", body: SAMPLE_J_CONNECTED },
    ]);
    expect(r.host.activeSessions()).toBe(1);

    // After CONNECT the caller talks to the drone directly.
    expect(await r.host.handle(stanza(thread, [req("add_item", ["apple", 0.5, 3], 1)], { direct: true }))).toEqual({
      session: "open",
      thread,
    });
    await r.host.handle(stanza(thread, [req("add_item", ["pear", 1.25], 2)], { direct: true }));
    await r.host.handle(stanza(thread, [req("total", [], 3)], { direct: true }));
    const results = r.messages().filter((m) => m.type === "RESULT");
    expect(results.map((m) => m.type === "RESULT" && m.payload.content)).toEqual([1, 2, 2.75]);

    const before = r.transport.sent.length;
    const out2 = await r.host.handle(stanza(thread, [disconnect(4)], { direct: true }));
    expect(out2).toEqual({ session: "closed", thread });
    expect(r.transport.sent).toHaveLength(before);
    expect(r.host.activeSessions()).toBe(0);
    expect(r.ended).toEqual([[thread, "disconnect"]]);
  });

  test("a REQUEST after DISCONNECT on the same thread is served statelessly", async () => {
    const r = rig(cart);
    const thread = newThread();
    await r.host.handle(stanza(thread, [connect(0)]));
    await r.host.handle(stanza(thread, [req("add_item", ["apple", 1], 1)], { direct: true }));
    await r.host.handle(stanza(thread, [disconnect(1)], { direct: true }));
    const out = await r.host.handle(stanza(thread, [req("list", [], 2)]));
    expect(out).toEqual({ session: "none", thread });
    expect(r.messages().at(-1)).toMatchObject({
      type: "STATUS",
      threadTrace: 2,
      payload: { className: "osrfMethodException", statusCode: 400 },
    });
  });

  test("a REQUEST without CONNECT is stateless: state does not survive", async () => {
    const svc = defineService({
      methods: [
        {
          name: "bump",
          handler(ctx) {
            const s = ctx.session.state as { n?: number };
            s.n = (s.n ?? 0) + 1;
            return [s.n, ctx.session.stateful];
          },
        },
      ],
    });
    const r = rig(svc, { service: "opensrf.x" });
    const thread = newThread();
    await r.host.handle(stanza(thread, [req("bump", [], 1)]));
    await r.host.handle(stanza(thread, [req("bump", [], 2)]));
    await r.host.handle(stanza(thread, [connect(0), req("bump", [], 3)]));
    await r.host.handle(stanza(thread, [req("bump", [], 4)], { direct: true }));
    const contents = r.messages().flatMap((m) => (m.type === "RESULT" ? [m.payload.content] : []));
    expect(contents).toEqual([
      [1, false],
      [1, false],
      [1, true],
      [2, true],
    ]);
  });

  test("keepalive: an idle session gets 408 with threadTrace 0 and is dropped", async () => {
    const clock = new ManualClock();
    const r = rig(cart, { settings: { keepalive: 0.2 }, clock });
    const thread = newThread();
    await r.host.handle(stanza(thread, [connect(0)], { xid: "k1" }));
    clock.advance(150);
    await r.host.handle(stanza(thread, [req("add_item", ["apple", 1], 1)], { direct: true, xid: "k2" }));
    const before = r.transport.sent.length;
    clock.advance(199);
    expect(r.transport.sent).toHaveLength(before); // the request reset the timer
    clock.advance(1);
    expect(r.transport.sent).toHaveLength(before + 1);
    expect(r.transport.sent.at(-1)).toEqual({ from: DRONE, to: CALLER, thread, xid: "k2", body: TIMEOUT_408 });
    expect(r.host.activeSessions()).toBe(0);
    expect(r.ended).toEqual([[thread, "timeout"]]);
    // The session is gone: the next request is stateless.
    await r.host.handle(stanza(thread, [req("list", [], 2)]));
    expect(r.messages().at(-1)).toMatchObject({ type: "STATUS", payload: { statusCode: 400 } });
  });

  test("keepalive counts from the session's last stanza: the timer finds it idle too briefly, and waits the rest", async () => {
    const clock = new ManualClock();
    const r = rig(cart, { settings: { keepalive: 0.2 }, clock });
    const timedOut = () => r.messages().some((m) => m.type === "STATUS" && m.payload.statusCode === 408);
    const thread = newThread();
    await r.host.handle(stanza(thread, [connect(0)]));
    clock.advance(150);
    await r.host.handle(stanza(thread, [req("list", [], 1)], { direct: true }));
    clock.advance(150); // 300: the first timer has fired and found the session idle for 150 ms only
    expect(timedOut()).toBe(false);
    clock.advance(49); // 349
    expect(timedOut()).toBe(false);
    clock.advance(1); // 350: 200 ms after the last stanza
    expect(timedOut()).toBe(true);
    expect(r.host.activeSessions()).toBe(0);
    expect(clock.pending).toBe(0);
  });

  test("keepalive counts idle time only: a long request does not time the session out", async () => {
    const clock = new ManualClock();
    let started!: () => void;
    let release!: () => void;
    const began = new Promise<void>((r) => (started = r));
    const gate = new Promise<void>((r) => (release = r));
    const waiting = defineService({
      methods: [
        {
          name: "slow",
          async handler() {
            started();
            await gate;
            return "done";
          },
        },
      ],
    });
    const r = rig(waiting, { settings: { keepalive: 0.1 }, clock });
    const thread = newThread();
    await r.host.handle(stanza(thread, [connect(0)]));
    const running = r.host.handle(stanza(thread, [req("slow", [], 1)], { direct: true }));
    await began;
    clock.advance(1000); // ten keepalives pass while the request runs
    release();
    const out = await running;
    expect(out.session).toBe("open");
    expect(r.messages().map((m) => m.type === "STATUS" && m.payload.statusCode)).toEqual([200, false, 205]);
    clock.advance(99);
    expect(r.messages()).toHaveLength(3);
    clock.advance(1);
    expect(r.messages().at(-1)).toMatchObject({ type: "STATUS", threadTrace: 0, payload: { statusCode: 408 } });
  });

  test("stanzas of one session are served one at a time, in order", async () => {
    const r = rig(stream);
    const thread = newThread();
    await r.host.handle(stanza(thread, [connect(0)]));
    const a = r.host.handle(stanza(thread, [req("slow", [80], 1)], { direct: true }));
    const b = r.host.handle(stanza(thread, [req("count", [1], 2)], { direct: true }));
    await Promise.all([a, b]);
    expect(
      r
        .messages()
        .slice(1)
        .map((m) => m.threadTrace),
    ).toEqual([1, 1, 2, 2]);
  });

  test("CONNECT and a REQUEST in one body; CONNECT+DISCONNECT in one body reports closed", async () => {
    const r = rig(cart);
    const t1 = newThread();
    expect(await r.host.handle(stanza(t1, [connect(0), req("add_item", ["a", 1], 1)]))).toEqual({
      session: "open",
      thread: t1,
    });
    expect(
      r.messages().map((m) => (m.type === "RESULT" ? m.payload.content : m.type === "STATUS" && m.payload.statusCode)),
    ).toEqual([200, 1, 205]);
    const t2 = newThread();
    expect(await r.host.handle(stanza(t2, [connect(0), disconnect(0)]))).toEqual({ session: "closed", thread: t2 });
  });
});

describe("bounces, bad bodies, close", () => {
  test("a bounce is logged and dropped", async () => {
    const r = rig(math);
    const thread = newThread();
    const bounce: Stanza = {
      ...stanza(thread, [req("add", [1, 1])]),
      error: { type: "cancel", condition: "service-unavailable", text: "User session not found" },
    };
    expect(await r.host.handle(bounce)).toEqual({ session: "none", thread });
    expect(r.transport.sent).toHaveLength(0);
    expect(r.logger.lines.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
      `Received a bounce (cancel/service-unavailable: User session not found) from ${ROUTER} on thread ${thread}; dropping it`,
    ]);
  });

  test("a bounce on an open session's thread ends the session", async () => {
    const r = rig(cart);
    const thread = newThread();
    await r.host.handle(stanza(thread, [connect(0)]));
    const bounce: Stanza = { ...stanza(thread, []), error: { type: "cancel", condition: "service-unavailable" } };
    expect(await r.host.handle(bounce)).toEqual({ session: "closed", thread });
    expect(r.ended).toEqual([[thread, "bounce"]]);
    expect(r.transport.sent).toHaveLength(1);
  });

  test("a body that is not JSON gets one log line and a 400 Bad Request", async () => {
    const r = rig(math);
    const thread = newThread();
    const bad = { ...stanza(thread, []), body: "registering" };
    expect(await r.host.handle(bad)).toEqual({ session: "none", thread });
    const errors = r.logger.lines.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toContain("not valid JSON");
    const [m] = r.messages();
    expect(m).toMatchObject({
      type: "STATUS",
      threadTrace: 0,
      payload: { className: "osrfMethodException", statusCode: 400 },
    });
    expect(m?.type === "STATUS" && m.payload.status).toStartWith(
      "Bad Request: bad osrfMessage at body: not valid JSON",
    );
    expect(r.transport.sent[0]).toMatchObject({ to: CALLER, thread });
  });

  test("a malformed message answers with the threadTrace it carried", async () => {
    const r = rig(math);
    const body = '[{"__c":"osrfMessage","__p":{"threadTrace":"7","type":"BOGUS"}}]';
    await r.host.handle({ ...stanza(newThread(), []), body });
    expect(r.messages()[0]).toMatchObject({
      threadTrace: 7,
      payload: { statusCode: 400, status: expect.stringContaining("body[0].__p.type") },
    });
  });

  test("a stanza without a thread is dropped", async () => {
    const r = rig(math);
    expect(await r.host.handle(stanza("", [req("add", [1, 1])]))).toEqual({ session: "none", thread: "" });
    expect(r.transport.sent).toHaveLength(0);
  });

  test("close ends sessions and ignores later stanzas", async () => {
    const r = rig(cart);
    const thread = newThread();
    await r.host.handle(stanza(thread, [connect(0)]));
    await r.host.close(0);
    expect(r.ended).toEqual([[thread, "close"]]);
    expect(await r.host.handle(stanza(newThread(), [req("list", [])]))).toMatchObject({ session: "none" });
    expect(r.transport.sent).toHaveLength(1);
  });

  test("close waits for a running request, up to the grace time", async () => {
    const r = rig(stream);
    const running = r.host.handle(stanza(newThread(), [req("slow", [60])]));
    await r.host.close(1000);
    expect(r.messages().at(-1)).toMatchObject({ payload: { statusCode: 205 } });
    await running;
    const clock = new ManualClock();
    const r2 = rig(stream, { clock });
    void r2.host.handle(stanza(newThread(), [req("hang", [])]));
    // A request that never ends: close returns once the grace time is up, not before, and says so.
    let closed = false;
    const closing = r2.host.close(50).then(() => (closed = true));
    clock.advance(49);
    await sleep(5);
    expect(closed).toBe(false);
    clock.advance(1);
    await closing;
    expect(r2.logger.lines).toContainEqual(
      expect.objectContaining({
        level: "warn",
        msg: expect.stringContaining("closed with 1 request(s) still running"),
      }),
    );
  });
});

describe("context", () => {
  test("ctx carries request data; call() passes xid, locale, tz and ingress on", async () => {
    let seen: Record<string, unknown> = {};
    const svc = defineService({
      methods: [
        {
          name: "proxy",
          argc: 1,
          async handler(ctx, x) {
            seen = {
              params: ctx.params,
              method: ctx.method,
              atomic: ctx.atomic,
              service: ctx.service,
              locale: ctx.locale,
              tz: ctx.tz,
              ingress: ctx.ingress,
              apiLevel: ctx.apiLevel,
              threadTrace: ctx.threadTrace,
              xid: ctx.xid,
              thread: ctx.session.thread,
            };
            ctx.log.info("proxying");
            return ctx.call("opensrf.dbmath", "add", x as JsonValue, 1);
          },
        },
      ],
    });
    const r = rig(svc, { service: "opensrf.x" });
    const thread = newThread();
    await r.host.handle(
      stanza(thread, [req("proxy.atomic", [5], 9, { locale: "de-DE", tz: "Europe/Berlin" })], { xid: "x9" }),
    );
    expect(seen).toEqual({
      params: [5],
      method: "proxy",
      atomic: true,
      service: "opensrf.x",
      locale: "de-DE",
      tz: "Europe/Berlin",
      ingress: "srfsh",
      apiLevel: 1,
      threadTrace: 9,
      xid: "x9",
      thread,
    });
    expect(r.client.calls).toEqual([
      {
        service: "opensrf.dbmath",
        method: "add",
        params: [5, 1],
        opts: { xid: "x9", locale: "de-DE", tz: "Europe/Berlin", ingress: "srfsh" },
      },
    ]);
    // A returned PendingRequest streams its results through.
    expect(r.messages()[0]).toMatchObject({ payload: { content: ["from dbmath"] } });
    expect(r.logger.lines).toContainEqual({ level: "info", msg: "proxying", xid: "x9", service: "test" });
  });

  test("ctx.respond refuses a non-JSON value with an error the handler can catch", async () => {
    const svc = defineService({
      methods: [
        {
          name: "careful",
          handler(ctx) {
            try {
              ctx.respond(10n);
            } catch (e) {
              return (e as Error).name;
            }
          },
        },
      ],
    });
    const r = rig(svc, { service: "opensrf.x" });
    await r.host.handle(stanza(newThread(), [req("careful", [])]));
    expect(r.messages()[0]).toMatchObject({ payload: { content: "ResultNotSerializableError" } });
  });
});

describe("createServiceHost", () => {
  test("refuses invalid settings", () => {
    const base = {
      service: "opensrf.math",
      definition: math,
      transport: new MemoryTransport(),
      client: new TableClient(),
      logger: new RecordingLogger(),
      logProtect: [],
    };
    expect(() => createServiceHost({ ...base, settings: { ...DEFAULTS, keepalive: 0 } })).toThrow(RangeError);
    expect(() => createServiceHost({ ...base, settings: { ...DEFAULTS, maxChunkSize: 5 } })).toThrow(RangeError);
    expect(() => createServiceHost({ ...base, settings: { ...DEFAULTS, maxBundleSize: -1 } })).toThrow(RangeError);
  });
});

describe("onFinalReply", () => {
  test("runs once per REQUEST, before its final STATUS reaches the transport, for results and exceptions alike", async () => {
    const sentAtCall: number[] = [];
    const { host, transport } = rig(math, { onFinalReply: () => void sentAtCall.push(transport.sent.length) });
    await host.handle(stanza(newThread(), [req("add", [2, 2])]));
    await host.handle(stanza(newThread(), [req("no.such.method", [])]));
    // Each time, nothing of that request had been sent yet (its RESULT and STATUS share one body).
    expect(sentAtCall).toEqual([0, 1]);
    expect(transport.sent.length).toBe(2);
  });
});
