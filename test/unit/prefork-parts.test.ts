import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { join } from "node:path";
import { emptyBusMessage } from "../../src/bus/message.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { readPreforkSettings } from "../../src/config/prefork-settings.ts";
import { crashBackoffSeconds } from "../../src/prefork/backoff.ts";
import { IpcMessageError, isStaleReport, parseDroneMessage, parseListenerMessage } from "../../src/prefork/ipc.ts";
import { jitteredMaxRequests } from "../../src/prefork/max-requests.ts";
import { memoryOverLimit, privateBytes } from "../../src/prefork/memory.ts";
import { bareJid, routersFor } from "../../src/prefork/registration.ts";
import { errorReply, failureStatus } from "../../src/prefork/replies.ts";
import { droneInit } from "../../src/prefork/serve.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { connect, disconnect, request } from "../../src/protocol/messages.ts";
import { redisAddresses } from "../../src/redis/addresses.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { xmppAddresses } from "../../src/xmpp/addresses.ts";
import type { Stanza } from "../../src/xmpp/types.ts";

const log = new RecordingLogger();

describe("IPC message checks", () => {
  test("a report counting fewer messages than were handed to the drone is stale; a count that is not a number is not", () => {
    expect(isStaleReport(2, 3)).toBe(true);
    expect(isStaleReport(0, 1)).toBe(true);
    expect(isStaleReport(3, 3)).toBe(false);
    expect(isStaleReport(4, 3)).toBe(false);
    expect(isStaleReport(undefined, 3)).toBe(false);
    expect(isStaleReport("2", 3)).toBe(false);
  });

  test("accepts every drone message shape", () => {
    const msgs = [
      { type: "ready", address: "a@b/c" },
      { type: "busy", method: "m", since: 1 },
      { type: "busy", method: "m", since: 1, caller: { to: "a", thread: "t", xid: "x", threadTraces: [1, 2] } },
      { type: "waiting", thread: "t" },
      { type: "available", served: 3, rssBytes: 100 },
      { type: "exiting", reason: "memory", served: 3, detail: "too big" },
    ];
    for (const m of msgs) expect(parseDroneMessage(m)).toEqual(m as never);
  });

  test("refuses wrong shapes with a message naming the problem", () => {
    expect(() => parseDroneMessage(null)).toThrow(IpcMessageError);
    expect(() => parseDroneMessage({ type: "exiting", reason: "bored", served: 1 })).toThrow(
      /exiting.reason is not a known reason/,
    );
    expect(() => parseDroneMessage({ type: "busy", method: "m", since: 1, caller: { to: "a" } })).toThrow(
      /busy.caller/,
    );
    expect(() => parseDroneMessage({ type: "available", served: Infinity, rssBytes: 1 })).toThrow(/available/);
    expect(() => parseDroneMessage({ type: "init" })).toThrow(/unknown type "init"/);
  });

  test("listener messages: request needs a whole stanza, shutdown a boolean and a known reason", () => {
    const stanza = emptyBusMessage();
    expect(parseListenerMessage({ type: "request", stanza })).toEqual({ type: "request", stanza });
    expect(() => parseListenerMessage({ type: "request", stanza: { ...stanza, body: 1 } })).toThrow(/not a stanza/);
    expect(parseListenerMessage({ type: "shutdown", graceful: false, reason: "spare" })).toEqual({
      type: "shutdown",
      graceful: false,
      reason: "spare",
    });
    expect(() => parseListenerMessage({ type: "shutdown", reason: "spare" })).toThrow(/graceful/);
    expect(() => parseListenerMessage({ type: "shutdown", graceful: true })).toThrow(/reason must be one of/);
    expect(() => parseListenerMessage({ type: "shutdown", graceful: true, reason: "bored" })).toThrow(/reason/);
    // An init message never shows its content (it holds the password) in errors.
    try {
      parseListenerMessage({ type: "init", init: { passwd: "s3cret" } });
      throw new Error("accepted");
    } catch (e) {
      expect((e as Error).message).not.toContain("s3cret");
    }
  });
});

describe("backoff and jitter", () => {
  test("first start-up failure respawns at once, then 1, 2, 4 … s up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6, 20].map((n) => crashBackoffSeconds(n, 10))).toEqual([0, 1, 2, 4, 8, 10, 10]);
  });

  test("max_requests jitter lowers by up to the fraction, never below 1", () => {
    expect(jitteredMaxRequests(1000, 0.1, () => 0)).toBe(1000);
    expect(jitteredMaxRequests(1000, 0.1, () => 0.999999)).toBe(900);
    expect(jitteredMaxRequests(1000, 0.1, () => 0.5)).toBe(950);
    expect(jitteredMaxRequests(1000, 0, () => 0.9)).toBe(1000);
    expect(jitteredMaxRequests(1, 0.5, () => 0.9)).toBe(1);
    for (let i = 0; i < 1000; i++) {
      const n = jitteredMaxRequests(50, 0.2);
      expect(n).toBeGreaterThanOrEqual(40);
      expect(n).toBeLessThanOrEqual(50);
    }
  });
});

describe("routers", () => {
  test("a router without a services list takes every service; with one, only those listed", () => {
    const routers = [
      { name: "router", domain: "private.localhost" },
      { name: "router", domain: "public.localhost", services: ["opensrf.math"] },
    ];
    const xmpp = (r: { name: string; domain: string }) => xmppAddresses.routerCommands(r.name, r.domain);
    const redis = (r: { name: string; domain: string }) => redisAddresses.routerCommands(r.name, r.domain);
    expect(routersFor("opensrf.math", routers).map(xmpp)).toEqual([
      "router@private.localhost/router",
      "router@public.localhost/router",
    ]);
    expect(routersFor("opensrf.settings", routers).map(xmpp)).toEqual(["router@private.localhost/router"]);
    expect(routersFor("opensrf.math", routers).map(redis)).toEqual([
      "opensrf:router:router:private.localhost",
      "opensrf:router:router:public.localhost",
    ]);
    expect(bareJid("Router@Private.Localhost/opensrf.math")).toBe("router@private.localhost");
  });
});

function stanza(body: string): Stanza {
  return {
    to: "l",
    from: "router@d/svc",
    thread: "T",
    body,
    routerFrom: "caller@d/r",
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    xid: "X",
  };
}

describe("error replies", () => {
  test("one exception per REQUEST/CONNECT of the stanza, none for DISCONNECT", () => {
    const body = encodeBody([request(3, "a", []), disconnect(3), request(4, "b", []), connect(0)]);
    const reply = errorReply(
      { kind: "stanza", stanza: stanza(body) },
      failureStatus("svc", { kind: "overload" }),
      log,
    )!;
    expect(reply).toMatchObject({ to: "caller@d/r", thread: "T", xid: "X" });
    expect(decodeBody(reply.body!).map((m) => [m.threadTrace, m.type])).toEqual([
      [3, "STATUS"],
      [4, "STATUS"],
      [0, "STATUS"],
    ]);
  });

  test("an undecodable body or one without requests is logged, not answered", () => {
    log.lines.length = 0;
    expect(
      errorReply({ kind: "stanza", stanza: stanza("not json") }, failureStatus("svc", { kind: "shutdown" }), log),
    ).toBeUndefined();
    expect(
      errorReply(
        { kind: "stanza", stanza: stanza(encodeBody([disconnect(1)])) },
        failureStatus("svc", { kind: "shutdown" }),
        log,
      ),
    ).toBeUndefined();
    expect(log.lines.map((l) => l.level)).toEqual(["warn", "warn"]);
  });

  test("a caller described by the drone is answered without decoding anything", () => {
    const reply = errorReply(
      { kind: "caller", caller: { to: "c@d/r", thread: "S", xid: "Y", threadTraces: [5] } },
      failureStatus("svc", { kind: "timeout", pid: 42, seconds: 30, method: "slow" }),
      log,
    )!;
    expect(decodeBody(reply.body!)).toEqual([
      {
        type: "STATUS",
        threadTrace: 5,
        locale: "en-US",
        apiLevel: 1,
        payload: {
          className: "osrfMethodException",
          statusCode: 500,
          status: "svc: slow did not finish within 30 s (request_timeout); its worker (pid 42) was stopped",
        },
      },
    ]);
  });

  test("status texts", () => {
    expect(failureStatus("svc", { kind: "overload" })).toEqual({
      code: 503,
      text: "Service unavailable: no available children and backlog queue at limit",
    });
    expect(failureStatus("svc", { kind: "died", pid: 7, code: 1, signal: null, starting: true }).text).toBe(
      "svc: the worker (pid 7) given this request died during start-up (exit code 1)",
    );
  });
});

describe("memory", () => {
  test("no limit, or under it: nothing to report", () => {
    expect(memoryOverLimit(0)).toBeUndefined();
    expect(memoryOverLimit(100_000)).toBeUndefined();
  });

  test("over the limit names the figure (private memory where /proc has it)", () => {
    const priv = privateBytes();
    const reason = memoryOverLimit(1, 10 * 1024 * 1024 * 1024);
    if (priv === undefined) expect(reason).toMatch(/^RSS [\d.]+ MB is above max_memory_mb 1$/);
    else expect(reason).toMatch(/^private memory [\d.]+ MB is above max_memory_mb 1$/);
  });
});

describe("drone init", () => {
  test("drones name this machine in their XMPP resource, not the --host the settings are read for (as C)", () => {
    const core = readCoreConfig(join(import.meta.dir, "../fixtures/config/opensrf_core.xml"));
    const o = { service: "opensrf.math", app: "math.ts", config: "opensrf_core.xml", host: "settings-host.invalid" };
    const init = droneInit(core, o, "/srv/math.ts", readPreforkSettings({}, "opensrf.math"));
    expect(init.hostname).toBe(hostname());
    expect(init.hostname).not.toBe(o.host);
  });
});
