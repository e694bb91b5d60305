/**
 * OsrfRouter driven through in-memory transports: registration and trust rules, forwarding,
 * bounce fail-over, and the router's own info methods, checked field by field against what
 * the C router does (samples D, E, F of the wire capture).
 */
import { beforeEach, describe, expect, test } from "bun:test";
import type { RouterConfig } from "../../src/config/types.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { connect, request } from "../../src/protocol/messages.ts";
import { OsrfRouter } from "../../src/router/router.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import type { Stanza } from "../../src/xmpp/types.ts";
import { FakeXmppConnection } from "../harness/fake-xmpp.ts";

const DOMAIN = "localhost";
const ROUTER = `router@${DOMAIN}/router`;
const CLIENT = "opensrf@localhost/_vm_1795547651.056703_28979";
const L1 = "opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589";
const L2 = "opensrf@localhost/opensrf.math_listener_vm_1795547590.111111_28600";
const THREAD = "1795547651.059807.179554765128979";
const XID = "1795547651289791";
const ADD_BODY = encodeBody([request(1, "add", [2, 2], { ingress: "srfsh" })]);

const config: RouterConfig = {
  trustedServers: ["localhost"],
  trustedClients: ["localhost", "public.localhost"],
  transport: {
    server: DOMAIN,
    port: 5222,
    username: "router",
    password: "secret",
    resource: "router",
    connectTimeout: 10,
    maxReconnectAttempts: 5,
  },
  host: "127.0.0.1",
  stallTimeout: 5,
  logfile: "stderr",
  loglevel: 5,
};

let log: RecordingLogger;
let conns: Map<string, FakeXmppConnection>;
let connectCalls: string[];
let router: OsrfRouter;
/** Set to make the next connect() fail or wait. */
let connectHook: ((resource: string) => Promise<void>) | undefined;

const tick = () => new Promise((r) => setTimeout(r, 0));
const main = () => conns.get("router")!;
const classConn = (c = "opensrf.math") => {
  const conn = conns.get(c);
  if (!conn) throw new Error(`no connection for class ${c}`);
  return conn;
};

async function register(from: string, cls = "opensrf.math"): Promise<void> {
  main().deliver({ from, routerClass: cls, routerCommand: "register", body: "registering" });
  await tick();
}

async function unregister(from: string, cls = "opensrf.math"): Promise<void> {
  main().deliver({ from, routerClass: cls, routerCommand: "unregister", body: "unregistering" });
  await tick();
}

beforeEach(async () => {
  log = new RecordingLogger();
  conns = new Map();
  connectCalls = [];
  connectHook = undefined;
  router = new OsrfRouter({
    config,
    logger: log,
    connect: async (resource) => {
      connectCalls.push(resource);
      if (connectHook) await connectHook(resource);
      const c = new FakeXmppConnection(`router@${DOMAIN}/${resource}`);
      conns.set(resource, c);
      return c;
    },
  });
  await router.start();
});

describe("start and stop", () => {
  test("logs in as router@domain/<resource> and closes every connection on stop", async () => {
    expect(connectCalls).toEqual(["router"]);
    expect(router.jid).toBe(ROUTER);
    await register(L1);
    await register(L1, "opensrf.dbmath");
    await router.stop();
    expect([...conns.values()].map((c) => [c.jid, c.closed])).toEqual([
      [ROUTER, true],
      ["router@localhost/opensrf.math", true],
      ["router@localhost/opensrf.dbmath", true],
    ]);
  });
});

describe("register / unregister", () => {
  test("register from a trusted server domain adds the node and opens router@domain/<class>", async () => {
    await register(L1);
    expect(router.registry.classNames()).toEqual(["opensrf.math"]);
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L1]: 0 });
    expect(connectCalls).toEqual(["router", "opensrf.math"]);
    expect(classConn().jid).toBe("router@localhost/opensrf.math");
    expect(log.messages("info")).toContain(`Registering class opensrf.math: adding node ${L1}`);
    // The router answers nothing to a register.
    expect(main().sent).toEqual([]);
  });

  test("a second node joins the class without a new connection; a duplicate register changes nothing but is logged", async () => {
    await register(L1);
    await register(L2);
    router.registry.nextNode("opensrf.math");
    await register(L1);
    expect(connectCalls).toEqual(["router", "opensrf.math"]);
    // The node keeps its place and its count, as in C.
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L1]: 1, [L2]: 0 });
    // C logs "Registering class" for every register, so a SIGUSR2 re-registration is visible.
    expect(log.messages("info").filter((m) => m.startsWith("Registering class"))).toEqual([
      `Registering class opensrf.math: adding node ${L1}`,
      `Registering class opensrf.math: adding node ${L2}`,
      `Registering class opensrf.math: node ${L1} is already registered`,
    ]);
  });

  test("register and unregister from an untrusted server domain are ignored with a warning", async () => {
    const evil = "opensrf@evil.example/opensrf.math_listener_x_1_2";
    await register(evil);
    expect(router.registry.classNames()).toEqual([]);
    expect(connectCalls).toEqual(["router"]);
    expect(log.messages("warn")).toEqual([`Received message from un-trusted server domain ${evil}`]);

    await register(L1);
    // Same resource as L1 but another domain: not allowed to unregister L1's class.
    await unregister("opensrf@evil.example/opensrf.math_listener_vm_1795547578.318649_28589");
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L1]: 0 });
    expect(log.messages("warn")).toHaveLength(2);
  });

  test("a trusted *client* domain is not a server domain: it cannot register", async () => {
    await register("opensrf@public.localhost/opensrf.math_listener_p_1_2");
    expect(router.registry.classNames()).toEqual([]);
    expect(log.messages("warn")).toEqual([
      "Received message from un-trusted server domain opensrf@public.localhost/opensrf.math_listener_p_1_2",
    ]);
  });

  test("unregister removes the node; the last one removes the class and closes its connection", async () => {
    await register(L1);
    await register(L2);
    await unregister(L1);
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L2]: 0 });
    expect(classConn().closed).toBe(false);
    await unregister(L2);
    expect(router.registry.classNames()).toEqual([]);
    expect(classConn().closed).toBe(true);
    expect(log.messages("info")).toContain(`Unregistering ${L2} from class opensrf.math`);
    expect(log.messages("info")).toContain("Removing router class opensrf.math");
    // Registering again opens a new connection.
    await register(L1);
    expect(connectCalls).toEqual(["router", "opensrf.math", "opensrf.math"]);
    expect(classConn().closed).toBe(false);
  });

  test("unregister of a node that never registered changes nothing", async () => {
    await register(L1);
    await unregister(L2);
    await unregister(L1, "opensrf.nope");
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L1]: 0 });
    expect(classConn().closed).toBe(false);
  });

  test("register or unregister without a class, and unknown commands, are ignored", async () => {
    main().deliver({ from: L1, routerCommand: "register", body: "registering" });
    main().deliver({ from: L1, routerCommand: "unregister", body: "unregistering" });
    main().deliver({ from: L1, routerCommand: "explode", routerClass: "opensrf.math", xid: "x9" });
    await tick();
    expect(router.registry.classNames()).toEqual([]);
    expect(connectCalls).toEqual(["router"]);
    expect(main().sent).toEqual([]);
    expect(log.lines.filter((l) => l.level === "warn")).toEqual([
      {
        level: "warn",
        msg: `unknown router_command "explode" from ${L1}; expected register or unregister`,
        xid: "x9",
        service: "test",
      },
    ]);
  });

  test("everyone unregistering while the class connection logs in: it is closed once open", async () => {
    let release!: () => void;
    connectHook = (resource) =>
      resource === "opensrf.math" ? new Promise<void>((r) => (release = r)) : Promise.resolve();
    main().deliver({ from: L1, routerClass: "opensrf.math", routerCommand: "register", body: "registering" });
    await tick();
    main().deliver({ from: L1, routerClass: "opensrf.math", routerCommand: "unregister", body: "unregistering" });
    release();
    await tick();
    await tick();
    expect(router.registry.classNames()).toEqual([]);
    expect(classConn().closed).toBe(true);
  });

  test("a class connection that cannot log in drops the class and logs an error", async () => {
    connectHook = async (resource) => {
      if (resource === "opensrf.math") throw new Error("login refused");
    };
    await register(L1);
    await tick();
    expect(router.registry.classNames()).toEqual([]);
    expect(log.messages("error")).toEqual(["cannot open the connection for class opensrf.math: login refused"]);
  });
});

describe("forwarding", () => {
  beforeEach(async () => {
    await register(L1);
    await register(L2);
  });

  test("a request is re-sent to the next node with router_from = caller, same thread, body and xid (sample F)", () => {
    classConn().deliver({ from: CLIENT, thread: THREAD, body: ADD_BODY, xid: XID });
    expect(classConn().take()).toEqual([
      {
        to: L1,
        from: "router@localhost/opensrf.math",
        thread: THREAD,
        body: ADD_BODY,
        routerFrom: CLIENT,
        routerTo: "",
        routerClass: "",
        routerCommand: "",
        xid: XID,
      },
    ]);
    expect(main().sent).toEqual([]);
  });

  test("nodes take turns, and the stats count the forwards", () => {
    for (let i = 0; i < 5; i++) classConn().deliver({ from: CLIENT, thread: `t${i}`, body: ADD_BODY, xid: `x${i}` });
    const out = classConn().take();
    expect(out.map((s) => [s.to, s.thread, s.xid])).toEqual([
      [L1, "t0", "x0"],
      [L2, "t1", "x1"],
      [L1, "t2", "x2"],
      [L2, "t3", "x3"],
      [L1, "t4", "x4"],
    ]);
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L1]: 3, [L2]: 2 });
  });

  test("the caller is the sender, even if it already put a router_from in", () => {
    classConn().deliver({ from: CLIENT, routerFrom: "opensrf@localhost/spoofed", thread: THREAD, body: ADD_BODY });
    expect(classConn().take()[0]!.routerFrom).toBe(CLIENT);
  });

  test("a trusted client domain other than the server domain may send requests", () => {
    const pub = "opensrf@public.localhost/_gw_1_2";
    classConn().deliver({ from: pub, thread: THREAD, body: ADD_BODY, xid: XID });
    expect(
      classConn()
        .take()
        .map((s) => [s.to, s.routerFrom]),
    ).toEqual([[L1, pub]]);
  });

  test("requests from an untrusted client domain are dropped with a warning", () => {
    classConn().deliver({ from: "opensrf@evil.example/_x_1_2", thread: THREAD, body: ADD_BODY, xid: XID });
    expect(classConn().sent).toEqual([]);
    expect(log.lines.filter((l) => l.level === "warn")).toEqual([
      {
        level: "warn",
        msg: "Received client message from untrusted client domain evil.example",
        xid: XID,
        service: "test",
      },
    ]);
    expect(router.registry.classTotal("opensrf.math")).toBe(0);
  });

  test("the body is forwarded as is, even when it is not an osrfMessage (the router does not parse it)", () => {
    classConn().deliver({ from: CLIENT, thread: THREAD, body: "not json at all" });
    expect(
      classConn()
        .take()
        .map((s) => [s.to, s.body]),
    ).toEqual([[L1, "not json at all"]]);
  });
});

describe("bounces", () => {
  const ERR = { type: "cancel", condition: "service-unavailable", text: "User session not found" };

  beforeEach(async () => {
    await register(L1);
    await register(L2);
  });

  test("a bounce carrying the message (ejabberd): the node is dropped and the message goes to the next node", () => {
    classConn().deliver({ from: CLIENT, thread: THREAD, body: ADD_BODY, xid: XID });
    const forwarded = classConn().take()[0]!;
    expect(forwarded.to).toBe(L1);
    // ejabberd returns the stanza with to/from swapped and everything else intact.
    classConn().deliver({ ...forwarded, from: L1, to: forwarded.from, error: ERR });
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L2]: 1 });
    expect(classConn().take()).toEqual([
      {
        to: L2,
        from: "router@localhost/opensrf.math",
        thread: THREAD,
        body: ADD_BODY,
        routerFrom: CLIENT,
        routerTo: "",
        routerClass: "",
        routerCommand: "",
        xid: XID,
      },
    ]);
    expect(log.messages("warn")).toEqual([
      `node ${L1} of opensrf.math is unreachable (service-unavailable); removing it`,
    ]);
  });

  test("bodiless bounces (prosody): each recovers the next most recent forward to that node", () => {
    const bodies = [1, 2, 3, 4].map((n) => encodeBody([request(1, "add", [n, n])]));
    for (const [i, body] of bodies.entries())
      classConn().deliver({ from: CLIENT, thread: `t${i}`, body, xid: `x${i}` });
    // t0, t2 went to L1; t1, t3 to L2.
    expect(
      classConn()
        .take()
        .map((s) => [s.to, s.thread]),
    ).toEqual([
      [L1, "t0"],
      [L2, "t1"],
      [L1, "t2"],
      [L2, "t3"],
    ]);
    classConn().deliver({ from: L1, error: ERR });
    classConn().deliver({ from: L1, error: ERR });
    // L2's two own forwards plus the two recovered ones.
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L2]: 4 });
    expect(classConn().take()).toEqual(
      [
        ["t2", bodies[2]!, "x2"],
        ["t0", bodies[0]!, "x0"],
      ].map(([thread, body, xid]) => ({
        to: L2,
        from: "router@localhost/opensrf.math",
        thread: thread!,
        body: body!,
        routerFrom: CLIENT,
        routerTo: "",
        routerClass: "",
        routerCommand: "",
        xid: xid!,
      })),
    );
    // A third bodiless bounce from L1 has nothing left to stand for.
    classConn().deliver({ from: L1, error: ERR });
    expect(classConn().sent).toEqual([]);
    expect(log.messages("info")).toContain(
      `network error from ${L1} (class opensrf.math) with nothing left to resend; ignoring`,
    );
  });

  test("the last node bouncing: the caller gets osrfMethodException 503 on its threadTrace and the class goes", async () => {
    await unregister(L2);
    const body = encodeBody([request(7, "add", [1, 2]), request(8, "add", [3, 4])]);
    classConn().deliver({ from: CLIENT, thread: THREAD, body, xid: XID });
    const forwarded = classConn().take()[0]!;
    classConn().deliver({ ...forwarded, from: L1, to: forwarded.from, error: ERR });
    const [reply, ...rest] = classConn().take();
    expect(rest).toEqual([]);
    expect({ ...reply!, body: "" }).toEqual({
      to: CLIENT,
      from: "router@localhost/opensrf.math",
      thread: THREAD,
      body: "",
      routerFrom: "",
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: XID,
    });
    const text = "Service opensrf.math has no listener left (its last listener went away)";
    expect(decodeBody(reply!.body)).toEqual(
      [7, 8].map((t) => ({
        type: "STATUS",
        threadTrace: t,
        locale: "en-US",
        apiLevel: 1,
        payload: { className: "osrfMethodException", status: text, statusCode: 503 },
      })),
    );
    await tick();
    expect(router.registry.classNames()).toEqual([]);
    expect(classConn().closed).toBe(true);
  });

  test("a request the server delivers to a class while its connection closes is answered 503 through the router's own connection", async () => {
    await unregister(L2);
    await unregister(L1);
    expect(classConn().closed).toBe(true);
    main().take();
    // Sent by a caller as the class went: the closing class connection still receives it.
    classConn().deliver({ from: CLIENT, thread: THREAD, body: encodeBody([request(3, "add", [1, 2])]), xid: XID });
    expect(classConn().take()).toEqual([]);
    const [reply, ...rest] = main().take();
    expect(rest).toEqual([]);
    expect(reply).toMatchObject({ to: CLIENT, from: ROUTER, thread: THREAD, xid: XID });
    expect(decodeBody(reply!.body)).toEqual([
      {
        type: "STATUS",
        threadTrace: 3,
        locale: "en-US",
        apiLevel: 1,
        payload: {
          className: "osrfMethodException",
          status: "Service opensrf.math has no registered listener",
          statusCode: 503,
        },
      },
    ]);
  });

  test("a last-node bounce of a CONNECT answers 503 on the CONNECT's threadTrace", async () => {
    await unregister(L2);
    classConn().deliver({ from: CLIENT, thread: THREAD, body: encodeBody([connect(0)]), xid: XID });
    classConn().deliver({ from: L1, error: ERR });
    const [reply] = classConn().take().slice(1);
    expect(
      decodeBody(reply!.body).map((m) => [m.type, m.threadTrace, m.type === "STATUS" && m.payload.statusCode]),
    ).toEqual([["STATUS", 0, 503]]);
  });

  test("a last-node bounce with a garbage body: logged, nothing sent back, no throw", async () => {
    await unregister(L2);
    classConn().deliver({ from: CLIENT, thread: THREAD, body: "{garbage", xid: XID });
    classConn().take();
    expect(() =>
      classConn().deliver({
        from: L1,
        to: "router@localhost/opensrf.math",
        routerFrom: CLIENT,
        thread: THREAD,
        body: "{garbage",
        error: ERR,
      }),
    ).not.toThrow();
    expect(classConn().sent).toEqual([]);
    expect(
      log
        .messages("warn")
        .some((m) => m.startsWith(`bad message body from ${L1}: bad osrfMessage at body: not valid JSON`)),
    ).toBe(true);
    expect(log.messages("warn")).toContain(
      `dropping message for ${CLIENT}: Service opensrf.math has no listener left (its last listener went away)`,
    );
  });

  test("two full bounces from one node: the second (node already removed) is still re-sent", () => {
    classConn().deliver({ from: CLIENT, thread: "a", body: ADD_BODY, xid: "xa" });
    classConn().deliver({ from: CLIENT, thread: "b", body: ADD_BODY, xid: "xb" });
    classConn().deliver({ from: CLIENT, thread: "c", body: ADD_BODY, xid: "xc" });
    const [toL1a, , toL1c] = classConn().take();
    expect([toL1a!.to, toL1c!.to]).toEqual([L1, L1]);
    classConn().deliver({ ...toL1a!, from: L1, to: toL1a!.from, error: ERR });
    classConn().deliver({ ...toL1c!, from: L1, to: toL1c!.from, error: ERR });
    expect(
      classConn()
        .take()
        .map((s) => [s.to, s.thread, s.routerFrom]),
    ).toEqual([
      [L2, "a", CLIENT],
      [L2, "c", CLIENT],
    ]);
  });

  test('a type="error" message from a JID that is not a node (a forged bounce) is ignored', () => {
    const forger = "opensrf@localhost/_forger_1_2";
    const victim = "opensrf@localhost/_victim_1_2";
    classConn().deliver({ from: forger, thread: "forged", body: ADD_BODY, routerFrom: victim, xid: "xf", error: ERR });
    classConn().deliver({ from: forger, error: ERR });
    expect(classConn().sent).toEqual([]);
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L1]: 0, [L2]: 0 });
    expect(log.messages("warn")).toEqual([
      `ignoring an error message from ${forger}: not a node of opensrf.math`,
      `ignoring an error message from ${forger}: not a node of opensrf.math`,
    ]);
  });

  test("a bounce for a message with no router_from (nothing to answer) is ignored", () => {
    classConn().deliver({ from: L1, to: "router@localhost/opensrf.math", thread: THREAD, body: ADD_BODY, error: ERR });
    expect(classConn().sent).toEqual([]);
    expect(router.registry.nodeCount("opensrf.math")).toBe(2);
  });

  test("bounces on the router's own connection are ignored", () => {
    main().deliver({ from: CLIENT, thread: THREAD, body: ADD_BODY, error: ERR });
    expect(main().sent).toEqual([]);
    expect(router.registry.nodeCount("opensrf.math")).toBe(2);
  });
});

describe("router info methods (sample E)", () => {
  const E_RESULT =
    '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":null,"statusCode":"0","content":["opensrf.settings","opensrf.cslow","opensrf.math","opensrf.dbmath"]}}}}]';
  const E_STATUS =
    '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]';
  const E_THREAD = "1795547651.059119.179554765128979";

  function ask(method: string, params: unknown[] = [], trace = 1): Stanza[] {
    main().deliver({
      from: CLIENT,
      thread: E_THREAD,
      xid: "1795547651289790",
      body: encodeBody([request(trace, method, params as never, { ingress: "srfsh" })]),
    });
    return main().take();
  }

  function results(method: string, params: unknown[] = []): unknown {
    const out = ask(method, params);
    expect(out).toHaveLength(2);
    const [r] = decodeBody(out[0]!.body);
    if (r?.type !== "RESULT") throw new Error(`expected a RESULT, got ${out[0]!.body}`);
    expect(r.payload.status).toBeNull();
    expect(r.payload.statusCode).toBe(0);
    expect(out[1]!.body).toBe(E_STATUS);
    return r.payload.content;
  }

  beforeEach(async () => {
    for (const c of ["opensrf.settings", "opensrf.cslow", "opensrf.math", "opensrf.dbmath"]) await register(L1, c);
    await register(L2, "opensrf.math");
  });

  test('class.list: a RESULT (status null, statusCode "0") then a separate STATUS 205, as the C router sends', () => {
    const out = ask("opensrf.router.info.class.list");
    expect(out.map((s) => ({ ...s, body: "" }))).toEqual(
      [0, 1].map(() => ({
        to: CLIENT,
        from: ROUTER,
        thread: E_THREAD,
        body: "",
        routerFrom: "",
        routerTo: "",
        routerClass: "",
        routerCommand: "",
        // C leaves osrf_xid empty here; we carry the caller's xid like every other reply.
        xid: "1795547651289790",
      })),
    );
    expect(out[0]!.body).toBe(E_RESULT);
    expect(out[1]!.body).toBe(E_STATUS);
    expect(log.messages("info")).toContain("Router received app request: opensrf.router.info.class.list");
  });

  test("the sample-E request itself, as srfsh sent it, gets the sample-E answer bodies", () => {
    // Sample E's request, field for field.
    main().deliver({
      from: CLIENT,
      to: ROUTER,
      thread: E_THREAD,
      xid: "1795547651289790",
      body: '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"opensrf.router.info.class.list","params":[]}}}}]',
    });
    expect(
      main()
        .take()
        .map((s) => s.body),
    ).toEqual([E_RESULT, E_STATUS]);
  });

  test("stats methods", () => {
    for (let i = 0; i < 3; i++) conns.get("opensrf.math")!.deliver({ from: CLIENT, thread: `t${i}`, body: ADD_BODY });
    conns.get("opensrf.dbmath")!.deliver({ from: CLIENT, thread: "d", body: ADD_BODY });
    expect(results("opensrf.router.info.stats.class.summary", ["opensrf.math"])).toBe(3);
    expect(results("opensrf.router.info.stats.class.summary", ["opensrf.nope"])).toBe(0);
    expect(results("opensrf.router.info.stats.class", ["opensrf.math"])).toEqual({ [L1]: 2, [L2]: 1 });
    expect(results("opensrf.router.info.stats.class", ["opensrf.nope"])).toEqual({});
    expect(results("opensrf.router.info.stats.class.all")).toEqual({
      "opensrf.settings": { [L1]: 0 },
      "opensrf.cslow": { [L1]: 0 },
      "opensrf.math": { [L1]: 2, [L2]: 1 },
      "opensrf.dbmath": { [L1]: 1 },
    });
    expect(results("opensrf.router.info.stats.class.node.all")).toEqual({
      "opensrf.settings": 0,
      "opensrf.cslow": 0,
      "opensrf.math": 3,
      "opensrf.dbmath": 1,
    });
  });

  test("the reply keeps the request's threadTrace and locale", () => {
    main().deliver({
      from: CLIENT,
      thread: "t",
      body: encodeBody([request(42, "opensrf.router.info.class.list", [], { locale: "fr-CA" })]),
    });
    const msgs = main()
      .take()
      .flatMap((s) => decodeBody(s.body));
    expect(msgs.map((m) => [m.type, m.threadTrace, m.locale])).toEqual([
      ["RESULT", 42, "fr-CA"],
      ["STATUS", 42, "fr-CA"],
    ]);
  });

  test('unknown router method: one osrfMethodException 404 "Router method not found", no 205', () => {
    const out = ask("opensrf.router.info.nope", [], 3);
    expect(out).toHaveLength(1);
    expect(out[0]!.to).toBe(CLIENT);
    expect(out[0]!.thread).toBe(E_THREAD);
    expect(decodeBody(out[0]!.body)).toEqual([
      {
        type: "STATUS",
        threadTrace: 3,
        locale: "en-US",
        apiLevel: 1,
        payload: { className: "osrfMethodException", status: "Router method not found", statusCode: 404 },
      },
    ]);
  });

  test("CONNECT to the router is answered with 200 Connection Successful", () => {
    main().deliver({ from: CLIENT, thread: "c", body: encodeBody([connect(0)]) });
    const out = main().take();
    expect(out.map((s) => s.body)).toEqual([
      '[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Connection Successful","statusCode":"200"}}}}]',
    ]);
  });

  test("app requests from an untrusted server domain get no answer", () => {
    main().deliver({
      from: "opensrf@public.localhost/_x_1_2",
      thread: "t",
      body: encodeBody([request(1, "opensrf.router.info.class.list", [])]),
    });
    expect(main().sent).toEqual([]);
    expect(log.messages("warn")).toEqual([
      "Received message from un-trusted server domain opensrf@public.localhost/_x_1_2",
    ]);
  });
});

describe("malformed messages to the router", () => {
  test("are logged and dropped; nothing throws, nothing is sent, the table is unchanged", async () => {
    await register(L1);
    const bodies = [
      "",
      "registering",
      "{",
      "[",
      "null",
      "42",
      '"str"',
      "{}",
      "[]",
      "[1]",
      "[null]",
      '[{"__c":"osrfMessage"}]',
      '[{"__c":"osrfMessage","__p":{}}]',
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST"}}]',
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":5}}}}]',
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"m","params":"x"}}}}]',
      '[{"__c":"osrfMessage","__p":{"threadTrace":"-1","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"m"}}}}]',
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"EXPLODE"}}]',
      '[{"__c":"somethingElse","__p":{"threadTrace":"1","type":"REQUEST"}}]',
      '[{"__proto__":{"type":"REQUEST"}}]',
      `[${"[".repeat(100_000)}${"]".repeat(100_000)}]`,
      `["${"x".repeat(1_000_000)}"]`,
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"opensrf.router.info.class.list","params":[]}}}},5]',
    ];
    for (const body of bodies) {
      for (const routerCommand of ["", "register", "unregister", "nonsense"]) {
        expect(() => main().deliver({ from: CLIENT, thread: "t", body, routerCommand })).not.toThrow();
      }
    }
    await tick();
    expect(main().sent).toEqual([]);
    expect(router.registry.classStats("opensrf.math")).toEqual({ [L1]: 0 });
    const bad = log
      .messages("warn")
      .filter((m) => m.startsWith(`bad message body from ${CLIENT}: bad osrfMessage at `));
    // Every body but the two empty-array/array-of-nothing-to-answer ones is reported.
    expect(bad.length).toBe(bodies.length - 1);
    expect(log.messages("warn").filter((m) => m.startsWith('unknown router_command "nonsense"'))).toHaveLength(
      bodies.length,
    );
  });
});
