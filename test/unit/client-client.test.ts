/**
 * The OpenSRF client over an in-memory transport: what it sends, how it matches replies
 * (thread, then threadTrace), and how each failure reaches the caller.
 */

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Client } from "../../src/client/client.ts";
import { DeliveryError, RequestError, TimeoutError } from "../../src/client/errors.ts";
import { splitResult } from "../../src/protocol/chunking.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { complete, connectOk, methodException, result, status } from "../../src/protocol/messages.ts";
import type { JsonValue, OsrfMessage } from "../../src/protocol/types.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";
import { StanzaTooLargeError } from "../../src/xmpp/errors.ts";
import { completeStanza } from "../../src/xmpp/stanza.ts";
import type { Stanza, StanzaError } from "../../src/xmpp/types.ts";
import { FakeXmppConnection } from "../harness/fake-xmpp.ts";

const MATH = "router@localhost/opensrf.math";
const DRONE = "opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594";
const UNAVAILABLE: StanzaError = { type: "cancel", condition: "service-unavailable", text: "User session not found" };

let t: FakeXmppConnection;
let log: RecordingLogger;
let client: Client;
/** The client's timers: reply timeouts fire only when a test advances it. */
let clock: ManualClock;

function only<T>(xs: T[]): T {
  expect(xs).toHaveLength(1);
  return xs[0]!;
}

function sentMessages(s: Stanza): OsrfMessage[] {
  return decodeBody(s.body);
}

async function settled(p: Promise<unknown>): Promise<{ ok: true; value: unknown } | { ok: false; error: Error }> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    return { ok: false, error: e as Error };
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

beforeEach(() => {
  t = new FakeXmppConnection();
  log = new RecordingLogger();
  clock = new ManualClock();
  client = new Client({
    transport: t,
    routerName: "router",
    logger: log,
    timeout: 5,
    ingress: "test-ingress",
    ownTransport: true,
    clock,
  });
});

afterEach(async () => {
  await client.close();
});

describe("stateless requests", () => {
  test("the REQUEST goes to router@domain/<service> with a new thread and xid", () => {
    void client
      .request("opensrf.math", "add", [2, 2])
      .collect()
      .catch(() => {});
    const s = only(t.take());
    expect(s.to).toBe(MATH);
    expect(s.from).toBe(t.jid);
    expect(s.thread).toMatch(/^\d{10}\.\d{6}\.\d+$/);
    expect(s.xid).toMatch(/^\d+$/);
    expect([s.routerFrom, s.routerTo, s.routerClass, s.routerCommand]).toEqual(["", "", "", ""]);
    const expected: OsrfMessage = {
      type: "REQUEST",
      threadTrace: 1,
      locale: "en-US",
      ingress: "test-ingress",
      apiLevel: 1,
      payload: { method: "add", params: [2, 2] },
    };
    if (process.env.TZ) expected.tz = process.env.TZ;
    expect(sentMessages(s)).toEqual([expected]);
  });

  test("each request gets its own thread; request options set xid, locale and ingress", () => {
    void client
      .request("opensrf.math", "add", [1], { xid: "my-xid", locale: "fr-CA", ingress: "other" })
      .collect()
      .catch(() => {});
    void client
      .request("opensrf.math", "add", [2])
      .collect()
      .catch(() => {});
    const [a, b] = t.take();
    expect(a!.thread).not.toBe(b!.thread);
    expect(a!.xid).toBe("my-xid");
    const [m] = sentMessages(a!);
    expect([m!.locale, m!.ingress]).toEqual(["fr-CA", "other"]);
  });

  test("RESULTs then STATUS 205 (sample H): the results, in order; the thread is then forgotten", async () => {
    const p = client.request("opensrf.math", "opensrf.system.echo", ["hello", 42]).collect();
    const s = only(t.take());
    t.reply(s, DRONE, [result(1, "hello"), result(1, 42), complete(1)]);
    expect(await p).toEqual(["hello", 42]);
    expect(client.inFlight).toBe(0);
    // A late reply on the finished thread is not ours any more.
    expect(
      client.dispatch(completeStanza({ to: t.jid, thread: s.thread, body: encodeBody([result(1, 1)]) }, DRONE)),
    ).toBe(false);
  });

  test("results stream as they arrive, one message per stanza", async () => {
    const req = client.request("opensrf.math", "stream");
    const s = only(t.take());
    const it = req[Symbol.asyncIterator]();
    t.reply(s, DRONE, [result(1, "a")]);
    expect(await it.next()).toEqual({ value: "a", done: false });
    t.reply(s, DRONE, [result(1, { b: [1] })]);
    expect(await it.next()).toEqual({ value: { b: [1] }, done: false });
    t.reply(s, DRONE, [complete(1)]);
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test("a request answered by the router itself (sample E: status null, statusCode 0, then 205)", async () => {
    const p = client.request("router", "opensrf.router.info.class.list").collect();
    const s = only(t.take());
    expect(s.to).toBe("router@localhost/router");
    t.deliver({
      from: "router@localhost/router",
      thread: s.thread,
      body: '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":null,"statusCode":"0","content":["opensrf.settings","opensrf.math"]}}}}]',
    });
    t.deliver({
      from: "router@localhost/router",
      thread: s.thread,
      body: '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]',
    });
    expect(await p).toEqual([["opensrf.settings", "opensrf.math"]]);
  });

  test("partial results (206 pieces, 204 finalized) are reassembled into one result", async () => {
    const big = { rows: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `row "${i}" <&>` })) };
    const parts = splitResult(1, big, {}, 500)!;
    expect(parts.length).toBeGreaterThan(10);
    const p = client.request("opensrf.math", "big").collect();
    const s = only(t.take());
    for (const part of parts) t.reply(s, DRONE, [part]);
    t.reply(s, DRONE, [result(1, "after"), complete(1)]);
    expect(await p).toEqual([big as JsonValue, "after"]);
  });

  test("a non-2xx STATUS fails the request with RequestError (code, text, class, context)", async () => {
    const p = client.request("opensrf.math", "no.such.method", [1], { xid: "x-404" }).collect();
    const s = only(t.take());
    t.reply(s, DRONE, [methodException(1, 404, "Method [no.such.method] not found for service opensrf.math")]);
    const r = await settled(p);
    if (r.ok) throw new Error("request succeeded");
    expect(r.error).toBeInstanceOf(RequestError);
    const e = r.error as RequestError;
    expect(e.statusCode).toBe(404);
    expect(e.statusText).toBe("Method [no.such.method] not found for service opensrf.math");
    expect(e.className).toBe("osrfMethodException");
    expect(e.context).toEqual({ service: "opensrf.math", method: "no.such.method", thread: s.thread, xid: "x-404" });
    expect(e.message).toBe(
      "opensrf.math no.such.method: osrfMethodException 404: Method [no.such.method] not found for service opensrf.math",
    );
    expect(client.inFlight).toBe(0);
  });

  test("results before the error are delivered, then the error", async () => {
    const req = client.request("opensrf.math", "m");
    const s = only(t.take());
    t.reply(s, DRONE, [result(1, 1), status(1, "osrfMethodException", 500, "An unknown server error occurred")]);
    const got: JsonValue[] = [];
    const r = await settled(
      (async () => {
        for await (const v of req) got.push(v);
      })(),
    );
    expect(got).toEqual([1]);
    expect(r.ok).toBe(false);
    expect((r as unknown as { error: RequestError }).error.statusCode).toBe(500);
  });

  test("1xx and other 2xx statuses keep the request open", async () => {
    const p = client.request("opensrf.math", "m").collect();
    const s = only(t.take());
    t.reply(s, DRONE, [
      status(1, "osrfContinueStatus", 100, "Please hold.  Creating a new Heart"),
      status(1, "osrfStatus", 202, "Accepted"),
    ]);
    await tick();
    expect(client.inFlight).toBe(1);
    t.reply(s, DRONE, [result(1, "done"), complete(1)]);
    expect(await p).toEqual(["done"]);
  });

  test("a bounce on the request's thread (service not registered, sample L) fails it with DeliveryError at once", async () => {
    const p = client.request("opensrf.nosuchservice", "foo", []).collect();
    const s = only(t.take());
    t.deliver({ ...s, from: s.to, to: s.from, error: UNAVAILABLE });
    const r = await settled(p);
    if (r.ok) throw new Error("request succeeded");
    expect(r.error).toBeInstanceOf(DeliveryError);
    const e = r.error as DeliveryError;
    expect(e.condition).toBe("service-unavailable");
    expect(e.message).toBe(
      "service opensrf.nosuchservice is not available: no listener is registered for it with router@localhost (XMPP service-unavailable)",
    );
    expect(e.context.thread).toBe(s.thread);
    expect(client.inFlight).toBe(0);
  });

  test("a bodiless bounce from the addressed JID fails that conversation only", async () => {
    const gone = client.request("opensrf.gone", "m").collect();
    const fine = client.request("opensrf.math", "m").collect();
    const [, toMath] = t.take();
    // prosody: type="error" with neither thread nor body.
    expect(client.dispatch(completeStanza({ to: t.jid, error: UNAVAILABLE }, "router@localhost/opensrf.gone"))).toBe(
      true,
    );
    const r = await settled(gone);
    expect(r.ok).toBe(false);
    expect((r as unknown as { error: Error }).error).toBeInstanceOf(DeliveryError);
    expect(client.inFlight).toBe(1);
    t.reply(toMath!, DRONE, [result(1, "ok"), complete(1)]);
    expect(await fine).toEqual(["ok"]);
  });

  test("a bodiless bounce from a JID we are not talking to is not ours", () => {
    void client
      .request("opensrf.math", "m")
      .collect()
      .catch(() => {});
    expect(client.dispatch(completeStanza({ to: t.jid, error: UNAVAILABLE }, "router@localhost/opensrf.other"))).toBe(
      false,
    );
    expect(client.inFlight).toBe(1);
  });

  test("no reply within the timeout: TimeoutError once the per-reply timeout has passed, not before", async () => {
    const p = client.request("opensrf.math", "slow", [], { timeout: 0.2, xid: "x-slow" }).collect();
    const s = only(t.take());
    clock.advance(199);
    expect(client.inFlight).toBe(1);
    clock.advance(1);
    expect(client.inFlight).toBe(0);
    const r = await settled(p);
    if (r.ok) throw new Error("request succeeded");
    expect(r.error).toBeInstanceOf(TimeoutError);
    const e = r.error as TimeoutError;
    expect(e.seconds).toBe(0.2);
    expect(e.message).toBe(`opensrf.math slow: no reply within 0.2 s (thread ${s.thread}, xid x-slow)`);
  });

  test("each reply re-arms the timeout", async () => {
    const p = client.request("opensrf.math", "slow", [], { timeout: 0.2 }).collect();
    const s = only(t.take());
    clock.advance(150);
    t.reply(s, DRONE, [result(1, "partial")]);
    // 300 ms since the request, 150 since the last reply: still waiting.
    clock.advance(150);
    expect(client.inFlight).toBe(1);
    clock.advance(50);
    expect(client.inFlight).toBe(0);
    const r = await settled(p);
    expect(r.ok).toBe(false);
    expect((r as unknown as { error: Error }).error).toBeInstanceOf(TimeoutError);
  });

  test("a call that completes leaves no timer behind", async () => {
    const p = client.request("opensrf.math", "add", [1, 2]).collect();
    expect(clock.pending).toBe(1);
    t.reply(only(t.take()), DRONE, [result(1, 3), complete(1)]);
    expect(await p).toEqual([3]);
    expect(clock.pending).toBe(0);
  });

  test("a reply whose body is not an osrfMessage fails the thread's calls with ProtocolError", async () => {
    const p = client.request("opensrf.math", "m").collect();
    const s = only(t.take());
    t.deliver({ from: DRONE, thread: s.thread, body: "{not json" });
    const r = await settled(p);
    expect((r as unknown as { error: Error }).error).toBeInstanceOf(ProtocolError);
    expect(
      log.lines.some(
        ({ level: lvl, msg: m }) => lvl === "warn" && m.startsWith(`bad reply from ${DRONE}: bad osrfMessage at body`),
      ),
    ).toBe(true);
  });

  test("a transport refusing the stanza (too large) fails the request with that error", async () => {
    t.failWith = new StanzaTooLargeError(2_000_000, 1_000_000, MATH);
    const r = await settled(client.request("opensrf.math", "m", ["x"]).collect());
    expect((r as unknown as { error: Error }).error).toBe(t.failWith);
    expect(client.inFlight).toBe(0);
  });

  test("replies for unknown threads are not dispatched; close() fails what is pending", async () => {
    expect(client.dispatch(completeStanza({ to: t.jid, thread: "nope", body: "[]" }, DRONE))).toBe(false);
    const p = client.request("opensrf.math", "m").collect();
    await client.close();
    const r = await settled(p);
    expect((r as unknown as { error: Error }).error.message).toBe("client closed");
    expect(t.closed).toBe(true);
  });
});

describe("stateful sessions", () => {
  async function connected() {
    const session = client.session("opensrf.math");
    const c = session.connect();
    const s = only(t.take());
    expect(s.to).toBe(MATH);
    expect(sentMessages(s).map((m) => [m.type, m.threadTrace])).toEqual([["CONNECT", 0]]);
    // The drone answers from its own JID (sample J).
    t.reply(s, DRONE, [connectOk(0)]);
    await c;
    return { session, thread: s.thread };
  }

  test("connect: CONNECT to the router, 200 from the drone makes the drone the remote", async () => {
    expect(client.session("opensrf.math").connected).toBe(false);
    const { session, thread } = await connected();
    expect(session.connected).toBe(true);
    expect((session as unknown as { remote: string }).remote).toBe(DRONE);
    expect((session as unknown as { thread: string }).thread).toBe(thread);
  });

  test("requests then go straight to the drone, on the session's thread, with rising threadTraces", async () => {
    const { session, thread } = await connected();
    const a = session.request("add", [1, 1]).collect();
    const b = session.request("add", [2, 2]).collect();
    const [sa, sb] = t.take();
    expect([sa!.to, sa!.thread, sb!.to, sb!.thread]).toEqual([DRONE, thread, DRONE, thread]);
    expect(sentMessages(sa!).map((m) => [m.type, m.threadTrace])).toEqual([["REQUEST", 1]]);
    expect(sentMessages(sb!).map((m) => [m.type, m.threadTrace])).toEqual([["REQUEST", 2]]);
    // Answers are matched by threadTrace, whatever their order.
    t.reply(sb!, DRONE, [result(2, 4), complete(2)]);
    t.reply(sa!, DRONE, [result(1, 2), complete(1)]);
    expect(await a).toEqual([2]);
    expect(await b).toEqual([4]);
  });

  test("408 from the drone: back to the router, pending requests are re-sent there", async () => {
    const { session, thread } = await connected();
    const p = session.request("add", [3, 3]).collect();
    const first = only(t.take());
    expect(first.to).toBe(DRONE);
    t.deliver({
      from: DRONE,
      thread,
      body: encodeBody([status(0, "osrfConnectStatus", 408, "Disconnected on timeout")]),
    });
    expect(session.connected).toBe(false);
    const resent = only(t.take());
    expect(resent.to).toBe(MATH);
    expect(resent.thread).toBe(thread);
    expect(resent.xid).toBe(first.xid);
    expect(resent.body).toBe(first.body);
    t.reply(resent, "opensrf@localhost/opensrf.math_drone_other_1.0_2", [result(1, 6), complete(1)]);
    expect(await p).toEqual([6]);
    // Nothing pending: a 408 re-sends nothing.
    t.deliver({
      from: DRONE,
      thread,
      body: encodeBody([status(0, "osrfConnectStatus", 408, "Disconnected on timeout")]),
    });
    expect(t.sent).toEqual([]);
  });

  test("disconnect sends DISCONNECT to the drone on the session's thread; then requests go to the router", async () => {
    const { session, thread } = await connected();
    const p = session.request("add", [1, 1]).collect();
    t.reply(only(t.take()), DRONE, [result(1, 2), complete(1)]);
    await p;
    session.disconnect();
    const d = only(t.take());
    expect(d.to).toBe(DRONE);
    expect(d.thread).toBe(thread);
    expect(sentMessages(d).map((m) => [m.type, m.threadTrace])).toEqual([["DISCONNECT", 1]]);
    expect(session.connected).toBe(false);
    // A second disconnect sends nothing.
    session.disconnect();
    expect(t.sent).toEqual([]);
  });

  test("a session that never connected sends no DISCONNECT", () => {
    client.session("opensrf.math").disconnect();
    expect(t.sent).toEqual([]);
  });

  test("a non-200 answer to CONNECT (router 503: no listener left) rejects connect()", async () => {
    const session = client.session("opensrf.math");
    const c = session.connect();
    const s = only(t.take());
    t.reply(s, MATH, [
      methodException(0, 503, "Service opensrf.math has no listener left (its last listener went away)"),
    ]);
    const r = await settled(c);
    expect((r as unknown as { error: RequestError }).error).toBeInstanceOf(RequestError);
    expect((r as unknown as { error: RequestError }).error.statusCode).toBe(503);
    expect(session.connected).toBe(false);
  });

  test("the drone going away mid-session (bounce from the drone JID) fails the pending request", async () => {
    const { session, thread } = await connected();
    const p = session.request("add", [1, 1]).collect();
    only(t.take());
    t.deliver({ from: DRONE, thread, error: UNAVAILABLE });
    const r = await settled(p);
    const e = (r as unknown as { error: DeliveryError }).error;
    expect(e).toBeInstanceOf(DeliveryError);
    expect(e.message).toBe(
      `the worker ${DRONE} serving this opensrf.math session is gone (XMPP service-unavailable); reconnect and retry`,
    );
    expect(session.connected).toBe(false);
  });
});
