import { describe, expect, test } from "bun:test";
import type { RouterTarget } from "../../src/config/types.ts";
import { LARGE_MESSAGE_CHARS, RELEASE_AFTER_MS } from "../../src/prefork/large-messages.ts";
import { Listener, type ListenerOptions } from "../../src/prefork/listener.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { connect, request } from "../../src/protocol/messages.ts";
import { Texts } from "../../src/protocol/status.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";
import type { Stanza } from "../../src/xmpp/types.ts";
import { FakeSpawner, FakeTransport, ONE_DRONE_LIMITS } from "../harness/prefork-fakes.ts";

const ROUTERS: RouterTarget[] = [
  { name: "router", domain: "private.localhost" },
  { name: "router", domain: "public.localhost", services: ["other.service"] },
  { name: "router2", domain: "localhost", services: ["svc", "x"] },
];

/** A started listener on fakes; `overrides` replace its options. */
function setup(overrides: Partial<ListenerOptions> = {}) {
  const transport = new FakeTransport();
  const spawner = new FakeSpawner();
  const logger = new RecordingLogger();
  const listener = new Listener({
    service: "svc",
    transport,
    routers: ROUTERS,
    spawner,
    limits: ONE_DRONE_LIMITS,
    shutdownTimeout: 1,
    logger,
    lingerMs: 0,
    ...overrides,
  });
  listener.start();
  return { transport, drones: spawner.drones, logger, listener };
}

function fromRouter(body: string, thread = "T1"): Stanza {
  return {
    to: "opensrf@localhost/svc_listener_h_1.0_1",
    from: "router2@localhost/svc",
    thread,
    body,
    routerFrom: "opensrf@localhost/_caller_1.0_9",
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    xid: "XID1",
  };
}

describe("Listener", () => {
  test("registers with every router whose services list allows the service (C's filter)", () => {
    const { transport } = setup();
    expect(transport.sent).toEqual([
      { to: "router@private.localhost/router", body: "registering", routerClass: "svc", routerCommand: "register" },
      { to: "router2@localhost/router", body: "registering", routerClass: "svc", routerCommand: "register" },
    ]);
  });

  test("hands router messages to a drone; drops messages from anyone else", () => {
    const { transport, drones, logger } = setup();
    const body = encodeBody([request(1, "m", [])]);
    transport.handler(fromRouter(body));
    expect(drones[0]!.sent.map((m) => m.type)).toEqual(["request"]);
    // The same router account on another domain, or another account: not ours.
    transport.handler({ ...fromRouter(body, "T2"), from: "router@public.localhost/svc" });
    transport.handler({ ...fromRouter(body, "T3"), from: "opensrf@localhost/_someone" });
    expect(drones[0]!.sent).toHaveLength(1);
    expect(logger.messages().filter((m) => m.includes("not one of the routers it registered with"))).toHaveLength(2);
    // Bare JIDs compare case-insensitively: accepted (the one drone is busy and there is
    // no backlog, so it is answered with 503 rather than dropped).
    transport.sent.length = 0;
    transport.handler({ ...fromRouter(body, "T4"), from: "Router2@LOCALHOST/svc" });
    expect(logger.messages().filter((m) => m.includes("not one of the routers it registered with"))).toHaveLength(2);
    expect(transport.sent.map((s) => s.thread)).toEqual(["T4"]);
  });

  test("XMPP error bounces are logged and dropped", () => {
    const { transport, drones, logger } = setup();
    transport.handler({
      ...fromRouter("x"),
      error: { type: "cancel", condition: "service-unavailable", text: "User session not found" },
    });
    expect(drones[0]!.sent).toEqual([]);
    expect(
      logger.messages("warn").some((m) => /XMPP error \(cancel\/service-unavailable: User session not found\)/.test(m)),
    ).toBe(true);
  });

  test("a client sharing the connection gets its replies first", () => {
    const seen: string[] = [];
    const { transport, drones } = setup({
      client: {
        dispatch: (s) => {
          seen.push(s.thread);
          return s.thread === "mine";
        },
      },
    });
    transport.handler({ ...fromRouter("[]", "mine"), from: "opensrf@localhost/opensrf.settings_drone_x" });
    expect(seen).toEqual(["mine"]);
    expect(drones[0]!.sent).toEqual([]);
  });

  test("overload answers 503 on the request's own threadTrace, to the caller, with its thread and xid", () => {
    const { transport, drones } = setup();
    transport.handler(fromRouter(encodeBody([request(1, "m", [])]), "busy"));
    transport.sent.length = 0;
    transport.handler(fromRouter(encodeBody([request(7, "m", [])]), "refused"));
    expect(drones).toHaveLength(1);
    expect(transport.sent).toHaveLength(1);
    const reply = transport.sent[0]!;
    expect(reply).toMatchObject({ to: "opensrf@localhost/_caller_1.0_9", thread: "refused", xid: "XID1" });
    expect(decodeBody(reply.body!)).toEqual([
      {
        type: "STATUS",
        threadTrace: 7,
        locale: "en-US",
        apiLevel: 1,
        payload: { className: "osrfMethodException", status: Texts.backlogFull, statusCode: 503 },
      },
    ]);
  });

  test("a drone dying mid-request: 500 naming the service and the dead worker", () => {
    const { transport, drones } = setup();
    transport.handler(fromRouter(encodeBody([connect(0)]), "s"));
    transport.sent.length = 0;
    drones[0]!.events.message({ type: "ready", address: "x" });
    drones[0]!.events.exit(null, "SIGKILL");
    const [status] = decodeBody(transport.sent[0]!.body!);
    expect(status).toMatchObject({
      type: "STATUS",
      threadTrace: 0,
      // No `busy` came (drones report only requests that outlast a turn of their event
      // loop): the method is read from the message the drone was handed.
      payload: {
        statusCode: 500,
        status: `svc: the worker (pid ${drones[0]!.pid}) running CONNECT died (killed by SIGKILL)`,
      },
    });
  });

  test("re-registers after the XMPP connection comes back, unless unregistered (USR1)", () => {
    const { transport, listener } = setup();
    transport.sent.length = 0;
    for (const h of transport.online) h(true);
    expect(transport.sent.map((s) => s.routerCommand)).toEqual(["register", "register"]);
    listener.unregister();
    transport.sent.length = 0;
    for (const h of transport.online) h(true);
    expect(transport.sent).toEqual([]);
    listener.register();
    expect(transport.sent.map((s) => s.routerCommand)).toEqual(["register", "register"]);
  });

  test("warns when no router lists the service", () => {
    const { transport, logger } = setup({ routers: [{ name: "router", domain: "d", services: ["other"] }] });
    expect(transport.sent).toEqual([]);
    expect(logger.messages().some((m) => m.includes("no router in /config/opensrf/routers lists this service"))).toBe(
      true,
    );
  });

  test("graceful stop: unregisters, stops idle drones, closes the connection", async () => {
    const { transport, drones, listener } = setup();
    drones[0]!.events.message({ type: "ready", address: "x" });
    transport.sent.length = 0;
    const stopping = listener.stopGracefully();
    await Bun.sleep(5);
    expect(transport.sent.map((s) => s.routerCommand)).toEqual(["unregister", "unregister"]);
    expect(drones[0]!.sent.at(-1)).toEqual({ type: "shutdown", graceful: true, reason: "shutdown" });
    drones[0]!.events.exit(0, null);
    await stopping;
    expect(transport.closed).toBe(true);
  });

  test("a failed reload keeps the drones", async () => {
    const { drones, logger, listener } = setup({
      lingerMs: undefined, // the default: this test does not stop the listener
      reload: async () => {
        throw new Error("opensrf.xml: bad value");
      },
    });
    await listener.reload();
    expect(drones).toHaveLength(1);
    expect(drones[0]!.sent).toEqual([]);
    expect(
      logger.messages().some((m) => m.includes("reload failed, keeping the current drones: opensrf.xml: bad value")),
    ).toBe(true);
  });

  test("a large message schedules one memory release after it; an ordinary one none", () => {
    const body = encodeBody([request(1, "m", [])]);
    const pendingAfter = (xmlBody: string) => {
      const clock = new ManualClock();
      const { transport } = setup({ clock });
      const before = clock.pending;
      transport.handler({ ...fromRouter(""), xmlBody });
      return { clock, added: clock.pending - before };
    };
    const small = pendingAfter(body);
    const large = pendingAfter(body + " ".repeat(LARGE_MESSAGE_CHARS));
    expect(large.added).toBe(small.added + 1);
    large.clock.advance(RELEASE_AFTER_MS);
    expect(large.clock.pending).toBe(small.clock.pending);
  });
});
