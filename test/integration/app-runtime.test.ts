/**
 * The application runtime end to end on a real XMPP server: our router as a subprocess,
 * the example services (math, stream, cart) and a few test services served IN-PROCESS by
 * the service host (no prefork), called by a Client, by hand-made stanzas and by
 * `osrf-prefork request`. Every test asserts the osrfMessages the service put on the wire
 * (type, threadTrace, class hints, status codes as strings, status texts), not only what a
 * client made of them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  type InProcessService,
  type InProcessServiceOptions,
  type RawOsrfMessage,
  startInProcessService,
  startTestCaller,
  type TestCaller,
  type WireStanza,
} from "../../devkit/in-process-service.ts";
import { TEST_USERS, writeCoreConfig } from "../../devkit/osrf-config.ts";
import { CliProcess, cliCommand, runCli } from "../../devkit/processes.ts";
import { startXmppServer, type XmppServer } from "../../devkit/xmpp-server.ts";
import cart from "../../examples/cart.ts";
import math from "../../examples/math.ts";
import stream from "../../examples/stream.ts";
import { defineMethod, defineService, type JsonValue } from "../../src/app/index.ts";
import { TimeoutError } from "../../src/client/errors.ts";
import type { ClientSession } from "../../src/client/types.ts";
import { OSRF_LINE_PATTERN } from "../../src/log/format.ts";
import { createLogger, type OsrfLogger } from "../../src/log/logger.ts";
import { escapedSize } from "../../src/protocol/chunking.ts";
import { encodeBody } from "../../src/protocol/codec.ts";
import { makeThread, makeXid } from "../../src/protocol/ids.ts";
import { connect, disconnect, request } from "../../src/protocol/messages.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";

// ---------------------------------------------------------------------------------------------
// Bodies of the OpenSRF 3.3.0 capture (samples F, H, I, K) and the exact C replies.

const SAMPLE_F_REQUEST =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST",' +
  '"payload":{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]';
const COMPLETE_205 =
  '{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}';
const SAMPLE_H_REPLY =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
  '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":4}}}},' +
  `${COMPLETE_205}]`;
const SAMPLE_I_REQUEST =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST",' +
  '"payload":{"__c":"osrfMethod","__p":{"method":"opensrf.system.echo","params":["hello",42]}}}}]';
const SAMPLE_I_REPLY =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
  '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":"hello"}}}},' +
  '{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
  '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":42}}}},' +
  `${COMPLETE_205}]`;
const SAMPLE_K_REQUEST =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST",' +
  '"payload":{"__c":"osrfMethod","__p":{"method":"no.such.method","params":[1]}}}}]';
const SAMPLE_K_REPLY =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfMethodException","__p":{"status":"Method [no.such.method] not found for service ' +
  'opensrf.math","statusCode":"404"}}}}]';
const CONNECTED_200 =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Connection Successful","statusCode":"200"}}}}]';
const TIMEOUT_408 =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Disconnected on timeout","statusCode":"408"}}}}]';

// ---------------------------------------------------------------------------------------------
// Test services

/** Records the lifecycle hooks the harness runs, in order. */
const lifecycle: string[] = [];

/** Calls other services from its handlers (ctx.call) and reports its request context. */
const relay = defineService({
  name: "opensrf.relay",
  init: () => void lifecycle.push("init"),
  childInit: () => void lifecycle.push("childInit"),
  childExit: () => void lifecycle.push("childExit"),
  methods: [
    defineMethod<[JsonValue, JsonValue]>({
      name: "add",
      argc: 2,
      handler: (ctx, a, b) => ctx.call("opensrf.math", "add", a, b).first(),
    }),
    defineMethod({
      name: "context",
      handler: (ctx) => ({
        xid: ctx.xid,
        locale: ctx.locale,
        tz: ctx.tz ?? null,
        ingress: ctx.ingress ?? null,
        threadTrace: ctx.threadTrace,
        service: ctx.service,
        method: ctx.method,
        stateful: ctx.session.stateful,
      }),
    }),
    defineMethod({ name: "lifecycle", handler: () => [...lifecycle] }),
  ],
});

/** A service whose login method must never have its params logged. */
const auth = defineService({
  name: "opensrf.auth",
  methods: [
    defineMethod<[JsonValue, JsonValue]>({
      name: "auth.login",
      argc: 2,
      handler(ctx, user) {
        ctx.log.info(`login for ${String(user)}`);
        return `token-${String(user)}`;
      },
    }),
    defineMethod({ name: "auth.echo", handler: (ctx) => ctx.params }),
  ],
});

// ---------------------------------------------------------------------------------------------
// The bus

const MAX_CHUNK = 51200;
const MAX_BUNDLE = 25600;

let xmpp: XmppServer;
let config: string;
let router: CliProcess;
let caller: TestCaller;
let svc: {
  math: InProcessService;
  stream: InProcessService;
  cart: InProcessService;
  cartShort: InProcessService;
  streamShort: InProcessService;
  relay: InProcessService;
  auth: InProcessService;
};
const started: InProcessService[] = [];
const mathLog = new RecordingLogger([], "opensrf.math");
const streamLog = new RecordingLogger([], "opensrf.stream");
const streamShortLog = new RecordingLogger([], "opensrf.stream.ka1");
// The keepalive timers of the two 1 s services run on these: the tests move time by hand,
// so a loaded machine cannot make a session look idle (or busy) for longer than it was.
const cartShortClock = new ManualClock();
const streamShortClock = new ManualClock();
let authLogDir: string;
let authLogFile: string;
let authLog: OsrfLogger;

beforeAll(async () => {
  xmpp = await startXmppServer({ users: TEST_USERS });
  config = writeCoreConfig(xmpp);
  router = CliProcess.start(["router", "--config", config, "--logfile", "stderr", "--loglevel", "3"]);
  await router.waitFor(/router online/);
  authLogDir = mkdtempSync(join(tmpdir(), "osrf-app-log-"));
  authLogFile = join(authLogDir, "auth.log");
  authLog = createLogger({ service: "opensrf.auth", logfile: authLogFile, loglevel: 3 });
  const base = { xmpp };
  // Each service is recorded as soon as it is up, so afterAll stops it even if another fails.
  const start = async (o: InProcessServiceOptions) => {
    const s = await startInProcessService(o);
    started.push(s);
    return s;
  };
  const [m, st, c, cs, ss, r, a] = await Promise.all([
    start({ ...base, service: "opensrf.math", definition: math, logger: mathLog }),
    start({
      ...base,
      service: "opensrf.stream",
      definition: stream,
      logger: streamLog,
      maxChunkSize: MAX_CHUNK,
      maxBundleSize: MAX_BUNDLE,
    }),
    start({ ...base, service: "opensrf.cart", definition: cart, keepalive: 5 }),
    // The cart again, under another name, with a 1 s keepalive.
    start({ ...base, service: "opensrf.cart.ka1", definition: cart, keepalive: 1, clock: cartShortClock }),
    start({
      ...base,
      service: "opensrf.stream.ka1",
      definition: stream,
      keepalive: 1,
      clock: streamShortClock,
      logger: streamShortLog,
    }),
    start({ ...base, service: "opensrf.relay", definition: relay }),
    start({
      ...base,
      service: "opensrf.auth",
      definition: auth,
      logger: authLog,
      logProtect: ["auth.login"],
    }),
  ]);
  svc = { math: m, stream: st, cart: c, cartShort: cs, streamShort: ss, relay: r, auth: a };
  caller = await startTestCaller(xmpp);
}, 55_000);

afterAll(async () => {
  await caller?.stop().catch(() => {});
  for (const s of started) await s.stop().catch(() => {});
  authLog?.close();
  await router?.stop();
  await xmpp?.stop();
  if (authLogDir) rmSync(authLogDir, { recursive: true, force: true });
  if (config) rmSync(dirname(config), { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers

const routerJid = (service: string) => `router@${xmpp.domain}/${service}`;

/** One message reduced to the fields the protocol fixes (codes as the strings on the wire). */
type Brief = Record<string, unknown>;

/** The messages of some stanzas, in order, as {@link Brief}s. */
function brief(stanzas: WireStanza[]): Brief[] {
  return stanzas.flatMap((s) => s.raw).map(briefOne);
}

function briefOne(m: RawOsrfMessage): Brief {
  const p = m.__p.payload?.__p ?? {};
  const out: Brief = { type: m.__p.type, threadTrace: m.__p.threadTrace };
  if (m.__p.payload) {
    out.cls = m.__p.payload.__c;
    out.status = p.status;
    out.statusCode = p.statusCode;
    if ("content" in p) out.content = p.content;
  }
  return out;
}

const ok = (threadTrace: string, content: unknown): Brief => ({
  type: "RESULT",
  threadTrace,
  cls: "osrfResult",
  status: "OK",
  statusCode: "200",
  content,
});
const complete = (threadTrace = "1"): Brief => ({
  type: "STATUS",
  threadTrace,
  cls: "osrfConnectStatus",
  status: "Request Complete",
  statusCode: "205",
});
const exception = (statusCode: string, status: string, threadTrace = "1"): Brief => ({
  type: "STATUS",
  threadTrace,
  cls: "osrfMethodException",
  status,
  statusCode,
});

/** Calls through the test caller's Client with a fresh xid; returns the results and the xid. */
async function call(service: string, method: string, params: JsonValue[] = [], opts: { timeout?: number } = {}) {
  const xid = makeXid();
  const results = await caller.client.request(service, method, params, { xid, ...opts }).collect();
  return { xid, results };
}

/** Expects a call to fail; returns the error and the xid. */
async function callFails(service: string, method: string, params: JsonValue[] = [], opts: { timeout?: number } = {}) {
  const xid = makeXid();
  try {
    await caller.client.request(service, method, params, { xid, ...opts }).collect();
  } catch (e) {
    return { xid, error: e as Error };
  }
  throw new Error(`${service} ${method} unexpectedly succeeded`);
}

/** Sends a hand-made stanza from the test caller. */
function sendRaw(to: string, thread: string, body: string, xid = makeXid()): string {
  caller.send({ to, thread, xid, body });
  return xid;
}

/** The stanza number `index` (from 0) the test caller received on `thread`, waiting for it. */
async function replyOn(thread: string, index = 0, timeoutMs = 10_000): Promise<WireStanza> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = caller.wire.received((s) => s.thread === thread);
    if (got.length > index) return got[index]!;
    if (Date.now() > deadline) throw new Error(`no reply #${index} on thread ${thread} within ${timeoutMs} ms`);
    await Bun.sleep(10);
  }
}

async function until(cond: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

function threadOf(session: ClientSession): string {
  return (session as unknown as { thread: string }).thread;
}

// ---------------------------------------------------------------------------------------------

describe("stateless requests (opensrf.math)", () => {
  test("add [2,2] from srfsh's exact request: sample H reply, one body, straight to the caller", async () => {
    const thread = makeThread();
    const xid = sendRaw(routerJid("opensrf.math"), thread, SAMPLE_F_REQUEST);
    const reply = await replyOn(thread);
    // What the service wrote, byte for byte.
    const sent = svc.math.wire.sentOnThread(thread);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.body).toBe(SAMPLE_H_REPLY);
    expect(sent[0]!.xml).toBe(
      `<message to="${caller.jid}" from="${svc.math.jid}"><opensrf router_from="" router_to="" router_class="" ` +
        `router_command="" osrf_xid="${xid}"/><thread>${thread}</thread><body>` +
        SAMPLE_H_REPLY.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;") +
        "</body></message>",
    );
    // The request came through the router (router_from = the caller); the reply did not.
    const got = svc.math.wire.received((s) => s.thread === thread);
    expect(got).toHaveLength(1);
    expect(got[0]!.from).toBe(routerJid("opensrf.math"));
    expect(got[0]!.routerFrom).toBe(caller.jid);
    expect(got[0]!.xid).toBe(xid);
    // What the caller got.
    expect(reply.body).toBe(SAMPLE_H_REPLY);
    expect(reply.from).toBe(svc.math.jid);
    expect(reply.xid).toBe(xid);
    expect(caller.wire.received((s) => s.thread === thread)).toHaveLength(1);
  });

  test("add, sub, mult, div through the Client: RESULT then 205 on the wire", async () => {
    const cases: Array<[string, JsonValue[], number]> = [
      ["add", [2, 2], 4],
      ["sub", [10, 4], 6],
      ["mult", [3, 7], 21],
      ["div", [1, 4], 0.25],
      ["add", ["1.5", "2.25abc"], 3.75],
    ];
    for (const [method, params, expected] of cases) {
      const { xid, results } = await call("opensrf.math", method, params);
      expect(results).toEqual([expected]);
      const sent = svc.math.wire.sentWithXid(xid);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.to).toBe(caller.jid);
      expect(brief(sent)).toEqual([ok("1", expected), complete()]);
    }
  });

  test("too few params: osrfMethodException 404 with C's text, no 205", async () => {
    const { xid, error } = await callFails("opensrf.math", "add", [1]);
    expect(error.message).toContain("Not enough params for method add / service opensrf.math");
    expect(brief(svc.math.wire.sentWithXid(xid))).toEqual([
      exception("404", "Not enough params for method add / service opensrf.math"),
    ]);
  });

  test("unknown method: sample K reply, byte for byte", async () => {
    const thread = makeThread();
    sendRaw(routerJid("opensrf.math"), thread, SAMPLE_K_REQUEST);
    const reply = await replyOn(thread);
    expect(reply.body).toBe(SAMPLE_K_REPLY);
    expect(svc.math.wire.sentOnThread(thread).map((s) => s.body)).toEqual([SAMPLE_K_REPLY]);
    // And through the Client, the text names method and service.
    const { xid, error } = await callFails("opensrf.math", "x", []);
    expect(error.message).toContain("osrfMethodException 404: Method [x] not found for service opensrf.math");
    expect(brief(svc.math.wire.sentWithXid(xid))).toEqual([
      exception("404", "Method [x] not found for service opensrf.math"),
    ]);
  });

  test("a MethodException from the handler keeps its code and text (div by zero → 400)", async () => {
    const { xid, error } = await callFails("opensrf.math", "div", [1, 0]);
    expect(error.message).toContain("opensrf.math div: division by zero");
    expect(brief(svc.math.wire.sentWithXid(xid))).toEqual([exception("400", "opensrf.math div: division by zero")]);
  });
});

describe("streaming (opensrf.stream)", () => {
  test("count 5: five RESULTs 1..5 then 205, all threadTrace 1", async () => {
    const { xid, results } = await call("opensrf.stream", "count", [5]);
    expect(results).toEqual([1, 2, 3, 4, 5]);
    expect(brief(svc.stream.wire.sentWithXid(xid))).toEqual(
      [1, 2, 3, 4, 5].map((n) => ok("1", n)).concat([complete()]),
    );
  });

  test("count with a delay streams: each result is sent (and received) before the request completes", async () => {
    const xid = makeXid();
    const arrivals: JsonValue[] = [];
    for await (const v of caller.client.request("opensrf.stream", "count", [4, 150], { xid })) arrivals.push(v);
    expect(arrivals).toEqual([1, 2, 3, 4]);
    // Four stanzas reached the caller, not one at the end: how far apart they came is the
    // machine's business, that they came apart is the streaming.
    expect(caller.wire.received((s) => s.xid === xid)).toHaveLength(4);
    const sent = svc.stream.wire.sentWithXid(xid);
    // Results 1–3 each went out alone while the handler waited; 4 shares the body of the 205.
    expect(sent.length).toBe(4);
    expect(sent.slice(0, 3).map((s) => s.raw.length)).toEqual([1, 1, 1]);
    expect(brief(sent)).toEqual([1, 2, 3, 4].map((n) => ok("1", n)).concat([complete()]));
  });

  test("count.atomic 100: ONE RESULT whose content is the array of 100, then 205", async () => {
    const { xid, results } = await call("opensrf.stream", "count.atomic", [100]);
    const all = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(results).toEqual([all]);
    expect(brief(svc.stream.wire.sentWithXid(xid))).toEqual([ok("1", all), complete()]);
  });

  test("bundling: many small results share bodies, each body under max_bundle_size and packed", async () => {
    const n = 600;
    const { xid, results } = await call("opensrf.stream", "count", [n]);
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    const bodies = svc.stream.wire.sentWithXid(xid);
    expect(brief(bodies)).toEqual(Array.from({ length: n }, (_, i) => ok("1", i + 1)).concat([complete()]));
    expect(bodies.length).toBeGreaterThan(1);
    expect(bodies.length).toBeLessThan(n / 10);
    for (const b of bodies) {
      expect(Buffer.byteLength(b.body)).toBeLessThan(MAX_BUNDLE);
      expect(b.raw.length).toBeGreaterThan(1);
    }
    // Packed: a body was flushed only because the next message would not fit in it.
    for (let i = 0; i + 1 < bodies.length; i++) {
      const next = JSON.stringify(bodies[i + 1]!.raw[0]);
      expect(bodies[i]!.body.length + 1 + next.length).toBeGreaterThanOrEqual(MAX_BUNDLE);
    }
  });

  test("a 1 MB result reaches `osrf-prefork request` intact, as partials ≤ max_chunk_size, then 204, then 205", async () => {
    const size = 1_048_576;
    const xid = makeXid();
    const r = await runCli(["request", "--config", config, "--xid", xid, "opensrf.stream", "big", String(size)], {
      timeoutMs: 30_000,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toBe("x".repeat(size));

    const sent = svc.stream.wire.sentWithXid(xid);
    const msgs = sent.flatMap((s) => s.raw);
    const partials = msgs.slice(0, -2);
    const expectedChunks = Math.ceil((size + 2 + 2 * 11) / MAX_CHUNK);
    expect(partials.length).toBeGreaterThanOrEqual(expectedChunks);
    // Each chunk travels alone in its body.
    expect(sent.slice(0, partials.length).every((s) => s.raw.length === 1)).toBe(true);
    let joined = "";
    for (const m of partials) {
      expect(m.__p.type).toBe("RESULT");
      expect(m.__p.threadTrace).toBe("1");
      expect(m.__p.payload?.__c).toBe("osrfResultPartial");
      const p = m.__p.payload!.__p;
      expect(p.status).toBe("Partial Response");
      expect(p.statusCode).toBe("206");
      expect(typeof p.content).toBe("string");
      expect(escapedSize(p.content as string)).toBeLessThanOrEqual(MAX_CHUNK);
      joined += p.content as string;
    }
    expect(joined).toBe(JSON.stringify("x".repeat(size)));
    expect(briefOne(msgs.at(-2)!)).toEqual({
      type: "RESULT",
      threadTrace: "1",
      cls: "osrfResultPartialComplete",
      status: "Partial Response Finalized",
      statusCode: "204",
      content: null,
    });
    expect(briefOne(msgs.at(-1)!)).toEqual(complete());
  }, 40_000);

  test("the 1 MB result is printed in full even when stdout is read late (the CLI waits for its pipe)", async () => {
    const size = 1_048_576;
    // The reader of the CLI's stdout starts only after 1.5 s, long after the result has
    // arrived: a CLI that exits without waiting for its output to be taken loses all but
    // the first 64 KB (the pipe's buffer).
    const proc = Bun.spawn(
      [
        "sh",
        "-c",
        '{ "$@"; echo "exit=$?" >&2; } | { sleep 1.5; cat; }',
        "sh",
        ...cliCommand(),
        "request",
        "--config",
        config,
        "opensrf.stream",
        "big",
        String(size),
      ],
      { stdout: "pipe", stderr: "pipe", stdin: "ignore" },
    );
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const [out, err] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    clearTimeout(timer);
    expect(err).toBe("exit=0\n");
    expect(out.length).toBe(size + 3);
    expect(JSON.parse(out)).toBe("x".repeat(size));
  }, 30_000);
});

describe("stateful sessions (opensrf.cart)", () => {
  test("by hand (sample J): CONNECT → 200 from the service's JID; requests share state; DISCONNECT ends it; a later REQUEST is stateless", async () => {
    const thread = makeThread();
    const connectXid = sendRaw(routerJid("opensrf.cart"), thread, encodeBody([connect(0)]));
    const connected = await replyOn(thread, 0);
    expect(connected.body).toBe(CONNECTED_200);
    expect(connected.from).toBe(svc.cart.jid);
    expect(connected.xid).toBe(connectXid);
    expect(svc.cart.host.activeSessions()).toBe(1);

    // Requests go straight to the service's JID now; the cart is the session's.
    sendRaw(svc.cart.jid, thread, encodeBody([request(1, "add_item", ["apple", 0.5, 3], { ingress: "srfsh" })]));
    expect(brief([await replyOn(thread, 1)])).toEqual([ok("1", 1), complete("1")]);
    sendRaw(svc.cart.jid, thread, encodeBody([request(2, "add_item", ["pear", 1.25], { ingress: "srfsh" })]));
    expect(brief([await replyOn(thread, 2)])).toEqual([ok("2", 2), complete("2")]);
    sendRaw(svc.cart.jid, thread, encodeBody([request(3, "total", [])]));
    expect(brief([await replyOn(thread, 3)])).toEqual([ok("3", 2.75), complete("3")]);
    // The router saw only the CONNECT: later messages came straight from the caller.
    const got = svc.cart.wire.received((s) => s.thread === thread);
    expect(got.map((s) => s.from)).toEqual([routerJid("opensrf.cart"), caller.jid, caller.jid, caller.jid]);

    // DISCONNECT: no reply, session gone.
    const sentBefore = svc.cart.wire.sentOnThread(thread).length;
    sendRaw(svc.cart.jid, thread, encodeBody([disconnect(3)]));
    await until(() => svc.cart.host.activeSessions() === 0, 5000, "the session to end");

    // Spec §5 and C: a REQUEST without CONNECT is served statelessly, even on the old
    // thread. The cart refuses stateless calls with its 400.
    sendRaw(svc.cart.jid, thread, encodeBody([request(4, "total", [])]));
    const after = await replyOn(thread, 4);
    expect(svc.cart.wire.sentOnThread(thread).length).toBe(sentBefore + 1);
    expect(brief([after])).toEqual([
      exception(
        "400",
        "opensrf.cart total needs a stateful session: CONNECT first, then call it on the same thread",
        "4",
      ),
    ]);
    expect(svc.cart.host.activeSessions()).toBe(0);
  });

  test("Client sessions: each session has its own cart; requests go to the service's JID", async () => {
    const s1 = caller.client.session("opensrf.cart");
    const s2 = caller.client.session("opensrf.cart");
    await Promise.all([s1.connect(), s2.connect()]);
    expect(s1.connected && s2.connected).toBe(true);
    expect(svc.cart.host.activeSessions()).toBe(2);
    for (const s of [s1, s2]) {
      const sent = svc.cart.wire.sentOnThread(threadOf(s));
      expect(brief(sent)).toEqual([
        {
          type: "STATUS",
          threadTrace: "0",
          cls: "osrfConnectStatus",
          status: "Connection Successful",
          statusCode: "200",
        },
      ]);
      expect(sent[0]!.from).toBe(svc.cart.jid);
    }
    expect(await s1.request("add_item", ["apple", 0.5, 2]).first()).toBe(1);
    expect(await s2.request("add_item", ["melon", 3]).first()).toBe(1);
    expect(await s1.request("add_item", ["bread", 2.1]).first()).toBe(2);
    expect(await s1.request("add_item", ["apple", 0.5]).first()).toBe(2);
    expect(await s1.request("list").first()).toEqual([
      { name: "apple", price: 0.5, quantity: 3 },
      { name: "bread", price: 2.1, quantity: 1 },
    ]);
    expect(await s1.request("total").first()).toBe(3.6);
    expect(await s2.request("total").first()).toBe(3);
    // After CONNECT, the caller addressed the service directly.
    const direct = caller.wire.sent((s) => s.thread === threadOf(s1));
    expect(direct[0]!.to).toBe(routerJid("opensrf.cart"));
    expect(direct.slice(1).every((s) => s.to === svc.cart.jid)).toBe(true);
    // threadTraces count up within the session.
    expect(
      svc.cart.wire
        .sentOnThread(threadOf(s1))
        .flatMap((s) => s.raw)
        .map((m) => m.__p.threadTrace),
    ).toEqual(["0", "1", "1", "2", "2", "3", "3", "4", "4", "5", "5"]);

    s1.disconnect();
    await until(() => svc.cart.host.activeSessions() === 1, 5000, "s1 to end");
    expect(await s2.request("total").first()).toBe(3);
    s2.disconnect();
    await until(() => svc.cart.host.activeSessions() === 0, 5000, "s2 to end");
  });

  test("Client: a request after DISCONNECT on the same session is served statelessly (the cart's 400)", async () => {
    const s = caller.client.session("opensrf.cart");
    await s.connect();
    expect(await s.request("add_item", ["apple", 1]).first()).toBe(1);
    s.disconnect();
    await until(() => svc.cart.host.activeSessions() === 0, 5000, "the session to end");
    const xid = makeXid();
    const err = await s
      .request("total", [], { xid, timeout: 5 })
      .collect()
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(err?.name).toBe("RequestError");
    expect(err?.message).toContain("osrfMethodException 400: opensrf.cart total needs a stateful session");
    // It went to the router (not the old JID), on the session's thread.
    const out = caller.wire.sent((m) => m.xid === xid);
    expect(out.map((m) => [m.to, m.thread])).toEqual([[routerJid("opensrf.cart"), threadOf(s)]]);
    expect(brief(svc.cart.wire.sentWithXid(xid))).toEqual([
      exception(
        "400",
        "opensrf.cart total needs a stateful session: CONNECT first, then call it on the same thread",
        "2",
      ),
    ]);
  });

  test("keepalive (1 s): idle time only; then 408 'Disconnected on timeout', threadTrace 0, to the caller", async () => {
    const thread = makeThread();
    const svcJid = svc.cartShort.jid;
    const sent408 = () => svc.cartShort.wire.sentOnThread(thread).filter((s) => s.body === TIMEOUT_408).length;
    sendRaw(routerJid("opensrf.cart.ka1"), thread, encodeBody([connect(0)]));
    expect((await replyOn(thread, 0)).body).toBe(CONNECTED_200);
    // Traffic every 600 ms keeps the session alive past 1 s in total.
    cartShortClock.advance(600);
    sendRaw(svcJid, thread, encodeBody([request(1, "add_item", ["tea", 2])]));
    expect(brief([await replyOn(thread, 1)])).toEqual([ok("1", 1), complete("1")]);
    cartShortClock.advance(600);
    sendRaw(svcJid, thread, encodeBody([request(2, "add_item", ["milk", 1])]));
    expect(brief([await replyOn(thread, 2)])).toEqual([ok("2", 2), complete("2")]);
    // 1 s of idleness after the last reply, not a millisecond less.
    cartShortClock.advance(999);
    expect(sent408()).toBe(0);
    cartShortClock.advance(1);
    expect(sent408()).toBe(1);

    const timeout = await replyOn(thread, 3);
    expect(timeout.body).toBe(TIMEOUT_408);
    expect(timeout.from).toBe(svcJid);
    expect(timeout.to).toBe(caller.jid);
    expect(svc.cartShort.host.activeSessions()).toBe(0);
    // The session is gone: the cart is empty again for a stateless call.
    sendRaw(svcJid, thread, encodeBody([request(3, "total", [])]));
    expect(brief([await replyOn(thread, 4)])).toEqual([
      exception(
        "400",
        "opensrf.cart.ka1 total needs a stateful session: CONNECT first, then call it on the same thread",
        "3",
      ),
    ]);
  });

  test("keepalive (1 s) does not count the time a request of the session takes", async () => {
    const thread = makeThread();
    // The 200 copies the CONNECT's threadTrace, whatever it is.
    sendRaw(routerJid("opensrf.stream.ka1"), thread, encodeBody([connect(7)]));
    expect((await replyOn(thread, 0)).body).toBe(CONNECTED_200.replace('"threadTrace":"0"', '"threadTrace":"7"'));
    // A request running for 5 s of keepalive time inside a 1 s keepalive: answered in full,
    // no 408 meanwhile. (Its own 200 ms wait is real.)
    const xid = sendRaw(svc.streamShort.jid, thread, encodeBody([request(1, "slow", [200])]));
    await until(
      () => streamShortLog.lines.some((l) => l.xid === xid && l.msg.startsWith("Running opensrf.stream.ka1 slow")),
      10_000,
      "the request to start",
    );
    streamShortClock.advance(5000);
    const answer = await replyOn(thread, 1);
    expect(brief([answer])).toEqual([ok("1", 200), complete("1")]);
    // The session then times out after 1 s of idleness.
    const sent408 = () => svc.streamShort.wire.sentOnThread(thread).filter((s) => s.body === TIMEOUT_408).length;
    streamShortClock.advance(999);
    expect(sent408()).toBe(0);
    streamShortClock.advance(1);
    expect(sent408()).toBe(1);
    const timeout = await replyOn(thread, 2);
    expect(timeout.body).toBe(TIMEOUT_408);
    expect(caller.wire.received((s) => s.thread === thread)).toHaveLength(3);
  });

  test("keepalive through the Client: the session drops to not-connected on the 408", async () => {
    const s = caller.client.session("opensrf.cart.ka1");
    await s.connect();
    expect(await s.request("add_item", ["tea", 2]).first()).toBe(1);
    expect(s.connected).toBe(true);
    cartShortClock.advance(1000);
    const got = await caller.wire.waitFor(
      (m) => m.dir === "recv" && m.thread === threadOf(s) && m.body.includes('"statusCode":"408"'),
      5000,
      "the 408",
    );
    expect(brief([got])).toEqual([
      {
        type: "STATUS",
        threadTrace: "0",
        cls: "osrfConnectStatus",
        status: "Disconnected on timeout",
        statusCode: "408",
      },
    ]);
    expect(s.connected).toBe(false);
  });

  test("`osrf-prefork request --connect` against the cart", async () => {
    const xid = makeXid();
    const r = await runCli([
      "request",
      "--config",
      config,
      "--connect",
      "--xid",
      xid,
      "opensrf.cart",
      "add_item",
      '"apple", 0.5, 3',
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("1\n");
    // On the wire: CONNECT via the router, 200, then the request straight to the service, then DISCONNECT.
    const first = svc.cart.wire.received((s) => s.xid === xid)[0]!;
    const thread = first.thread;
    await until(() => svc.cart.wire.received((s) => s.thread === thread).length >= 3, 5000, "the DISCONNECT");
    const got = svc.cart.wire.received((s) => s.thread === thread);
    expect(got.map((s) => s.messages.map((m) => m.type))).toEqual([["CONNECT"], ["REQUEST"], ["DISCONNECT"]]);
    expect(got[0]!.from).toBe(routerJid("opensrf.cart"));
    expect(got[1]!.from).toBe(got[0]!.routerFrom);
    expect(brief(svc.cart.wire.sentOnThread(thread))).toEqual([
      {
        type: "STATUS",
        threadTrace: "0",
        cls: "osrfConnectStatus",
        status: "Connection Successful",
        statusCode: "200",
      },
      ok("1", 1),
      complete("1"),
    ]);
    await until(() => svc.cart.host.activeSessions() === 0, 5000, "the session to end");

    // Without --connect the cart refuses, and the CLI shows the service's status.
    const r2 = await runCli(["request", "--config", config, "opensrf.cart", "add_item", '"apple", 0.5']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain("osrfMethodException 400: opensrf.cart add_item needs a stateful session");
  });
});

describe("system methods", () => {
  test("opensrf.system.echo: sample I reply, byte for byte; .atomic twin gives one array", async () => {
    const thread = makeThread();
    sendRaw(routerJid("opensrf.math"), thread, SAMPLE_I_REQUEST);
    expect((await replyOn(thread)).body).toBe(SAMPLE_I_REPLY);
    expect(svc.math.wire.sentOnThread(thread).map((s) => s.body)).toEqual([SAMPLE_I_REPLY]);

    const { xid, results } = await call("opensrf.math", "opensrf.system.echo.atomic", ["hello", 42, { a: [1] }]);
    expect(results).toEqual([["hello", 42, { a: [1] }]]);
    expect(brief(svc.math.wire.sentWithXid(xid))).toEqual([ok("1", ["hello", 42, { a: [1] }]), complete()]);
  });

  test("opensrf.system.time: epoch seconds", async () => {
    const before = Math.floor(Date.now() / 1000);
    const { xid, results } = await call("opensrf.math", "opensrf.system.time");
    const after = Math.ceil(Date.now() / 1000);
    expect(results).toHaveLength(1);
    const t = results[0] as number;
    expect(Number.isInteger(t)).toBe(true);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after);
    expect(brief(svc.math.wire.sentWithXid(xid))).toEqual([ok("1", t), complete()]);
  });

  test("opensrf.system.method.all: one introspection RESULT per method, twins and system methods included", async () => {
    const { xid, results } = await call("opensrf.math", "opensrf.system.method.all");
    const names = (results as Array<{ api_name: string }>).map((d) => d.api_name);
    for (const m of ["add", "sub", "mult", "div"]) {
      expect(names).toContain(m);
      expect(names).toContain(`${m}.atomic`);
    }
    for (const m of [
      "opensrf.system.echo",
      "opensrf.system.method",
      "opensrf.system.method.all",
      "opensrf.system.time",
    ]) {
      expect(names).toContain(m);
      expect(names).toContain(`${m}.atomic`);
    }
    expect(new Set(names).size).toBe(names.length);
    const KEYS = ["api_name", "method", "service", "notes", "argc", "sysmethod", "atomic", "cachable"];
    for (const d of results as Array<Record<string, unknown>>) {
      expect(Object.keys(d).slice(0, 8)).toEqual(KEYS);
      expect(d.service).toBe("opensrf.math");
    }
    const byName = new Map((results as Array<Record<string, unknown>>).map((d) => [d.api_name as string, d]));
    const { signature: _sig, ...add } = byName.get("add")!;
    expect(add).toEqual({
      api_name: "add",
      method: "osrfMathRun",
      service: "opensrf.math",
      notes: "Adds two numbers",
      argc: 2,
      sysmethod: 0,
      atomic: 0,
      cachable: 0,
    });
    expect(byName.get("add.atomic")!.atomic).toBe(1);
    expect(byName.get("opensrf.system.echo")).toMatchObject({ method: null, sysmethod: 1, atomic: 0, argc: 0 });
    expect(byName.get("opensrf.system.method")).toMatchObject({ sysmethod: 1, argc: 1 });
    // On the wire: one RESULT per method (bundled), then 205.
    const msgs = brief(svc.math.wire.sentWithXid(xid));
    expect(msgs).toHaveLength(results.length + 1);
    expect(msgs.slice(0, -1).every((m) => m.cls === "osrfResult" && m.statusCode === "200")).toBe(true);
    expect(msgs.at(-1)).toEqual(complete());

    // The .atomic twin: the same list as ONE RESULT.
    const atomic = await call("opensrf.math", "opensrf.system.method.all.atomic");
    expect(atomic.results).toEqual([results]);
    expect(brief(svc.math.wire.sentWithXid(atomic.xid))).toEqual([ok("1", results), complete()]);
  });

  test("opensrf.system.method with a prefix: only the matching methods; argc enforced", async () => {
    const { xid, results } = await call("opensrf.math", "opensrf.system.method", ["add"]);
    expect((results as Array<{ api_name: string }>).map((d) => d.api_name)).toEqual(["add", "add.atomic"]);
    expect(brief(svc.math.wire.sentWithXid(xid)).map((m) => m.type)).toEqual(["RESULT", "RESULT", "STATUS"]);

    const sys = await call("opensrf.math", "opensrf.system.method.atomic", ["opensrf.system.echo"]);
    expect((sys.results[0] as Array<{ api_name: string }>).map((d) => d.api_name)).toEqual([
      "opensrf.system.echo",
      "opensrf.system.echo.atomic",
    ]);
    const none = await callFails("opensrf.math", "opensrf.system.method", []);
    expect(brief(svc.math.wire.sentWithXid(none.xid))).toEqual([
      exception("404", "Not enough params for method opensrf.system.method / service opensrf.math"),
    ]);
  });
});

describe("failures", () => {
  test("a handler that throws: osrfMethodException naming the method and the error; the service keeps answering", async () => {
    const { xid, error } = await callFails("opensrf.stream", "fail");
    expect(error.name).toBe("RequestError");
    expect(error.message).toContain("opensrf.stream fail: failing as asked");
    const sent = brief(svc.stream.wire.sentWithXid(xid));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ type: "STATUS", threadTrace: "1", cls: "osrfMethodException", statusCode: "500" });
    expect(sent[0]!.status).toContain("Call to [fail] failed");
    expect(sent[0]!.status).toContain("opensrf.stream fail: failing as asked");
    // The failure is logged, with the stack, under the request's xid.
    const logged = streamLog.lines.filter((l) => l.xid === xid && l.level === "error");
    expect(logged).toHaveLength(1);
    expect(logged[0]!.msg).toContain(
      "opensrf.stream fail failed: Error: opensrf.stream fail: failing as asked\n    at ",
    );
    // Others (and the same service) are still served.
    const [a, b] = await Promise.all([call("opensrf.stream", "count", [2]), call("opensrf.math", "add", [1, 1])]);
    expect(a.results).toEqual([1, 2]);
    expect(b.results).toEqual([2]);
  });

  test("a handler that never resolves: the caller's per-call timeout fails with TimeoutError; others are served meanwhile", async () => {
    const started = Date.now();
    const hung = callFails("opensrf.stream", "hang", [], { timeout: 1 });
    // The handler never ends, so these are answered while it hangs, however long they take.
    const during = await Promise.all([
      call("opensrf.stream", "count", [3]),
      call("opensrf.stream", "slow", [50]),
      call("opensrf.math", "mult", [6, 7]),
    ]);
    expect(during.map((d) => d.results)).toEqual([[1, 2, 3], [50], [42]]);
    const { xid, error } = await hung;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.message).toContain("opensrf.stream hang: no reply within 1 s");
    // Not before its time (timers never fire early, so no load can break this).
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    // The service sent nothing for it.
    expect(svc.stream.wire.sentWithXid(xid)).toHaveLength(0);
  });

  test("a result that is not JSON: osrfMethodException 500 naming the method and the value", async () => {
    const cases: Array<[string, string]> = [
      ["bigint", "Result of method [bad_json] is not JSON-serializable: a BigInt at answer"],
      ["cycle", "Result of method [bad_json] is not JSON-serializable: a cycle at self"],
      ["function", "Result of method [bad_json] is not JSON-serializable: a function at [1]"],
    ];
    for (const [kind, text] of cases) {
      const { xid, error } = await callFails("opensrf.stream", "bad_json", [kind]);
      expect(error.message).toContain(text);
      expect(brief(svc.stream.wire.sentWithXid(xid))).toEqual([exception("500", text)]);
    }
  });
});

describe("context propagation", () => {
  test("ctx.call passes the caller's xid (and locale, tz, ingress) downstream; replies copy locale and tz", async () => {
    const xid = makeXid();
    const results = await caller.client
      .request("opensrf.relay", "add", [2, 3], {
        xid,
        locale: "fr-CA",
        tz: "America/Montreal",
        ingress: "test-ingress",
      })
      .collect();
    expect(results).toEqual([5]);
    // The relay's nested request, as it went out.
    const nested = svc.relay.wire.sent((s) => s.to === routerJid("opensrf.math") && s.xid === xid);
    expect(nested).toHaveLength(1);
    expect(nested[0]!.xml).toContain(`osrf_xid="${xid}"`);
    const req = nested[0]!.raw[0]!.__p;
    expect(req).toMatchObject({ type: "REQUEST", locale: "fr-CA", tz: "America/Montreal", ingress: "test-ingress" });
    expect(req.payload).toEqual({ __c: "osrfMethod", __p: { method: "add", params: [2, 3] } });
    // math received it with the same xid and answered with it, in the caller's locale.
    expect(svc.math.wire.received((s) => s.xid === xid)).toHaveLength(1);
    const mathReply = svc.math.wire.sentWithXid(xid);
    expect(mathReply.flatMap((s) => s.raw).map((m) => [m.__p.locale, m.__p.tz])).toEqual([
      ["fr-CA", "America/Montreal"],
      ["fr-CA", "America/Montreal"],
    ]);
    expect(mathReply[0]!.to).toBe(svc.relay.jid);
    // The relay's own reply to the caller: same xid, locale and tz copied, ingress not echoed (as C).
    const reply = svc.relay.wire.sent((s) => s.to === caller.jid && s.xid === xid);
    expect(brief(reply)).toEqual([ok("1", 5), complete()]);
    for (const m of reply.flatMap((s) => s.raw)) {
      expect(m.__p.locale).toBe("fr-CA");
      expect(m.__p.tz).toBe("America/Montreal");
      expect(m.__p.ingress).toBeUndefined();
    }
  });

  test("the handler sees the request's xid, locale, tz, ingress and threadTrace", async () => {
    const xid = makeXid();
    const [ctx] = await caller.client
      .request("opensrf.relay", "context", [], { xid, locale: "de-DE", tz: "Europe/Berlin", ingress: "srfsh" })
      .collect();
    expect(ctx).toEqual({
      xid,
      locale: "de-DE",
      tz: "Europe/Berlin",
      ingress: "srfsh",
      threadTrace: 1,
      service: "opensrf.relay",
      method: "context",
      stateful: false,
    });
    expect(
      svc.relay.wire
        .sentWithXid(xid)
        .flatMap((s) => s.raw)
        .map((m) => m.__p.locale),
    ).toEqual(["de-DE", "de-DE"]);
  });

  test("init and childInit ran before serving, once each", async () => {
    const { results } = await call("opensrf.relay", "lifecycle");
    expect(results).toEqual([["init", "childInit"]]);
  });
});

describe("logging", () => {
  test("each request is logged (activity) with its xid, method and params", async () => {
    const { xid } = await call("opensrf.math", "add", [2, 2]);
    const lines = mathLog.lines.filter((l) => l.xid === xid);
    expect(lines).toContainEqual({
      level: "activity",
      msg: "Running opensrf.math add [ 2,2 ]",
      xid,
      service: "opensrf.math",
    });
    const bad = await callFails("opensrf.math", "add", [7]);
    const warn = mathLog.lines.filter((l) => l.xid === bad.xid);
    expect(warn.map((l) => l.level)).toEqual(["activity", "warn"]);
    expect(warn[0]!.msg).toBe("Running opensrf.math add [ 7 ]");
  });

  test("log file: OpenSRF line format with the xid; a log_protect method's params are redacted", async () => {
    const login = await call("opensrf.auth", "auth.login", ["alice", "s3cret-pw"]);
    expect(login.results).toEqual(["token-alice"]);
    const echo = await call("opensrf.auth", "auth.echo", ["visible", 1]);
    expect(echo.results).toEqual([["visible", 1]]);
    expect(existsSync(authLogFile)).toBe(true);
    const lines = readFileSync(authLogFile, "utf8")
      .split("\n")
      .filter((l) => l !== "");
    const parsed = lines.map((l) => OSRF_LINE_PATTERN.exec(l)).filter((m) => m !== null);
    expect(parsed).toHaveLength(lines.length);
    const of = (xid: string) => parsed.filter((m) => m[7] === xid).map((m) => [m[1], m[3], Number(m[4]), m[8]]);
    expect(of(login.xid)).toEqual([
      ["opensrf.auth", "ACT", process.pid, "Running opensrf.auth auth.login [ **PARAMS REDACTED** ]"],
      ["opensrf.auth", "INFO", process.pid, "login for alice"],
    ]);
    expect(of(echo.xid)).toEqual([
      ["opensrf.auth", "ACT", process.pid, 'Running opensrf.auth auth.echo [ "visible",1 ]'],
    ]);
    expect(lines.join("\n")).not.toContain("s3cret-pw");
  });
});
