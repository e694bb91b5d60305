/**
 * Real OpenSRF C processes against our router, on ejabberd (what OpenSRF sites run).
 *
 * We cannot run the C binaries here, so we do exactly what they do on the wire: log in with
 * legacy jabber:iq:auth <digest> (as libopensrf does) under the very JIDs of the capture in
 * test/fixtures/wire/opensrf-3.3-wire.txt, and send the captured C stanzas byte for byte
 * (double quotes, C's attribute set and child order). What comes back is compared with what
 * ejabberd delivered to the real C processes in the capture.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type LegacySession, legacyLogin } from "../../devkit/legacy-auth.ts";
import { TEST_USERS, writeCoreConfig } from "../../devkit/osrf-config.ts";
import { CliProcess, runCli } from "../../devkit/processes.ts";
import { TestListener } from "../../devkit/test-listener.ts";
import { startXmppServer, type XmppServer } from "../../devkit/xmpp-server.ts";
import { decodeBody } from "../../src/protocol/codec.ts";
import { parseStanza } from "../../src/xmpp/stanza.ts";
import type { Stanza } from "../../src/xmpp/types.ts";

setDefaultTimeout(60_000);

// ---------------------------------------------------------------------------------------------
// The capture

const WIRE = readFileSync(join(import.meta.dir, "../fixtures/wire/opensrf-3.3-wire.txt"), "utf8");

/** The n-th `<message>` of section `section` on connection `conn` in direction `dir`, verbatim. */
function sample(section: string, conn: string, dir: "C->S" | "S->C", nth = 0): string {
  let current = "";
  const found: string[] = [];
  for (const line of WIRE.split("\n")) {
    const h = /^== ([A-Z])\. /.exec(line);
    if (h) current = h[1]!;
    const m = /^\s*[\d.]+ (c\d+)\s+(C->S|S->C) \d+B: (<message[ >].*)$/.exec(line);
    if (m && current === section && m[1] === conn && m[2] === dir) found.push(m[3]!);
  }
  if (!found[nth]) throw new Error(`no sample ${section} ${conn} ${dir} #${nth}`);
  return found[nth]!;
}

// The JIDs of the capture.
const SRFSH = "_vm_1795547651.056703_28979";
const MATH_LISTENER = "opensrf.math_listener_vm_1795547578.318649_28589";
const MATH_DRONE = "opensrf.math_drone_vm_1795547578.326919_28594";
const SRFSH_JID = `opensrf@localhost/${SRFSH}`;
const MATH_LISTENER_JID = `opensrf@localhost/${MATH_LISTENER}`;

const E_REQUEST = sample("E", "c25", "C->S");
const E_RESULT = sample("E", "c2", "C->S", 0);
const E_STATUS = sample("E", "c2", "C->S", 1);
const D_REGISTER = sample("D", "c1", "C->S");
const C_UNREGISTER = sample("C", "c1", "C->S");
const F_REQUEST = sample("F", "c25", "C->S");
const F_DELIVERED = sample("F", "c1", "S->C");
const H_REPLY = sample("H", "c26", "C->S");
const H_DELIVERED = sample("H", "c25", "S->C");
const L_REQUEST = sample("L", "c25", "C->S");
const L_BOUNCE = sample("L", "c25", "S->C");

/** Sample D's register as another C listener of `cls` would send it. */
const registerText = (cls: string, resource: string) =>
  D_REGISTER.replace(`from="opensrf@localhost/${MATH_LISTENER}"`, `from="opensrf@localhost/${resource}"`).replace(
    'router_class="opensrf.math"',
    `router_class="${cls}"`,
  );

// ---------------------------------------------------------------------------------------------

let xmpp: XmppServer;
let config: string;
let router: CliProcess;
const sessions: LegacySession[] = [];
let srfsh: LegacySession;
let cListener: LegacySession;
let listener: TestListener;
const listenerSaw: Stanza[] = [];

async function cLogin(resource: string): Promise<LegacySession> {
  const s = await legacyLogin({
    host: xmpp.host,
    port: xmpp.port,
    domain: xmpp.domain,
    user: TEST_USERS[0]![0],
    password: TEST_USERS[0]![1],
    resource,
    mode: "digest",
  });
  sessions.push(s);
  return s;
}

/** The next `<message>` a raw session receives (skipping anything else), as XML text. */
async function nextMessage(s: LegacySession, timeoutMs = 10_000, probes = false): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const x = await s.nextStanza(Math.max(1, deadline - performance.now()));
    // Bounces of waitOffline's probes are only for waitOffline.
    if (x.startsWith("<message") && probes === x.includes("<thread>probe-")) return x;
  }
}

/** Waits until ejabberd bounces messages to `jid` (its session is really gone). */
async function waitOffline(jid: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    srfsh.send(`<message to="${jid}" from="${SRFSH_JID}"><thread>probe-${i}</thread><body>[]</body></message>`);
    // Delivered to a session still closing, the probe just vanishes: try again.
    const got = await nextMessage(srfsh, 500, true).catch(() => "");
    if (got.includes("type='error'")) return;
    await Bun.sleep(50);
  }
  throw new Error(`${jid} never went offline`);
}

async function classList(): Promise<string[]> {
  const r = await runCli([
    "request",
    "--config",
    config,
    "--timeout",
    "10",
    "router",
    "opensrf.router.info.class.list",
  ]);
  if (r.code !== 0) throw new Error(`class.list failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as string[];
}

async function waitForClasses(want: string[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const have = await classList();
    if (JSON.stringify(have) === JSON.stringify(want)) return;
    await Bun.sleep(50);
  }
  throw new Error(
    `classes never became ${JSON.stringify(want)}: ${JSON.stringify(await classList())}\n${router.output.slice(-2000)}`,
  );
}

beforeAll(async () => {
  xmpp = await startXmppServer({ kind: "ejabberd", users: TEST_USERS });
  config = writeCoreConfig(xmpp);
  router = CliProcess.start(["router", "--config", config, "--logfile", "stderr", "--loglevel", "3"]);
  await router.waitFor(/router online/);
  srfsh = await cLogin(SRFSH);

  // The classes of the capture, registered in the capture's order by C listeners; opensrf.math
  // by the listener of the capture itself, with sample D's exact text.
  const order = ["opensrf.settings", "opensrf.cslow", "opensrf.math", "opensrf.dbmath"];
  for (const cls of order) {
    if (cls === "opensrf.math") {
      cListener = await cLogin(MATH_LISTENER);
      cListener.send(D_REGISTER);
    } else {
      const resource = `${cls}_listener_vm_1795547578.000001_1`;
      const l = await cLogin(resource);
      l.send(registerText(cls, resource));
    }
    await waitForClasses(order.slice(0, order.indexOf(cls) + 1));
  }

  listener = await TestListener.start(xmpp, "test.interop", "ts");
  // See what the listener receives, then let it answer as usual.
  const conn = listener.conn as unknown as { handler: (s: Stanza) => void };
  const answer = conn.handler;
  listener.conn.onStanza((s) => {
    listenerSaw.push(s);
    answer(s);
  });
  listener.register();
  await waitForClasses([...order, "test.interop"]);
});

afterAll(async () => {
  for (const s of sessions) s.close();
  await listener?.close().catch(() => {});
  await router?.stop();
  await xmpp?.stop();
});

describe("a C client (srfsh) asking our router (sample E)", () => {
  test("sample E's request, byte for byte, gets the RESULT and a separate STATUS 205 with C's bodies", async () => {
    // Only the classes of the capture, as in the capture.
    const tsNode = listener.conn.jid;
    listener.unregister();
    await waitForClasses(["opensrf.settings", "opensrf.cslow", "opensrf.math", "opensrf.dbmath"]);

    srfsh.send(E_REQUEST);
    const first = await nextMessage(srfsh);
    const second = await nextMessage(srfsh);
    // ejabberd delivers in its own serialization; the content is what C sent in the capture,
    // except osrf_xid: the C router leaves it empty, we carry the caller's.
    expect(first).toContain(" from='router@localhost/router'");
    expect({ ...parseStanza(first), xid: "" }).toEqual(parseStanza(E_RESULT));
    expect({ ...parseStanza(second), xid: "" }).toEqual(parseStanza(E_STATUS));
    expect(parseStanza(first).xid).toBe("1795547651289790");
    expect(parseStanza(first).body).toBe(
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":null,"statusCode":"0","content":["opensrf.settings","opensrf.cslow","opensrf.math","opensrf.dbmath"]}}}}]',
    );

    listener.register();
    await waitForClasses(["opensrf.settings", "opensrf.cslow", "opensrf.math", "opensrf.dbmath", "test.interop"]);
    expect(listener.conn.jid).toBe(tsNode);
  });

  test("stats methods in the C request form", async () => {
    const ask = (method: string, params: string) =>
      E_REQUEST.replace('"opensrf.router.info.class.list","params":[]', `"${method}","params":${params}`).replace(
        "<thread>1795547651.059119.179554765128979</thread>",
        `<thread>stats-${method}</thread>`,
      );
    srfsh.send(ask("opensrf.router.info.stats.class", '["opensrf.math"]'));
    const reply = parseStanza(await nextMessage(srfsh));
    expect(reply.thread).toBe("stats-opensrf.router.info.stats.class");
    const [r] = decodeBody(reply.body);
    expect(r?.type === "RESULT" && r.payload.content).toEqual({ [MATH_LISTENER_JID]: expect.any(Number) });
    const done = decodeBody(parseStanza(await nextMessage(srfsh)).body);
    expect(done.map((m) => [m.type, m.type === "STATUS" && m.payload.statusCode])).toEqual([["STATUS", 205]]);
  });
});

describe("a C client calling a C service through our router (samples F, H)", () => {
  test("the forward reaches the C listener exactly as ejabberd delivered the C router's forward", async () => {
    srfsh.send(F_REQUEST);
    const forwarded = await nextMessage(cListener);
    // The router data rides in the <opensrf> child, which ejabberd keeps.
    expect(forwarded).toMatch(/<opensrf router_from=['"]opensrf@localhost\/_vm_1795547651\.056703_28979['"]/);
    expect(parseStanza(forwarded)).toEqual(parseStanza(F_DELIVERED));
    expect(parseStanza(forwarded)).toEqual({
      to: MATH_LISTENER_JID,
      from: "router@localhost/opensrf.math",
      thread: "1795547651.059807.179554765128979",
      body: parseStanza(F_REQUEST).body,
      routerFrom: SRFSH_JID,
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: "1795547651289791",
    });
  });

  test("the C drone's reply (sample H) goes straight to the caller, no router involved", async () => {
    const drone = await cLogin(MATH_DRONE);
    drone.send(H_REPLY);
    const got = await nextMessage(srfsh);
    expect(parseStanza(got)).toEqual(parseStanza(H_DELIVERED));
    expect(decodeBody(parseStanza(got).body).map((m) => m.type)).toEqual(["RESULT", "STATUS"]);
    drone.close();
  });

  test("the router counted the forward", async () => {
    const r = await runCli([
      "request",
      "--config",
      config,
      "router",
      "opensrf.router.info.stats.class.summary",
      '"opensrf.math"',
    ]);
    expect(r.code).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThanOrEqual(1);
  });
});

describe("a C client calling our TestListener through our router", () => {
  const stanzaFor = (method: string, params: string, thread: string) =>
    F_REQUEST.replace('to="router@localhost/opensrf.math"', 'to="router@localhost/test.interop"')
      .replace('"method":"add","params":[2,2]', `"method":"${method}","params":${params}`)
      .replace("<thread>1795547651.059807.179554765128979</thread>", `<thread>${thread}</thread>`);

  test("echo: the listener sees router_from = the C client, the C client gets RESULTs then 205", async () => {
    listenerSaw.length = 0;
    srfsh.send(stanzaFor("echo", '["hello",42]', "ts-echo"));
    const reply = parseStanza(await nextMessage(srfsh));
    expect(listenerSaw.map((s) => ({ ...s, body: "" }))).toEqual([
      {
        to: listener.conn.jid,
        from: "router@localhost/test.interop",
        thread: "ts-echo",
        body: "",
        routerFrom: SRFSH_JID,
        routerTo: "",
        routerClass: "",
        routerCommand: "",
        xid: "1795547651289791",
      },
    ]);
    expect(reply.from).toBe(listener.conn.jid);
    expect(reply.to).toBe(SRFSH_JID);
    expect(reply.thread).toBe("ts-echo");
    expect(reply.xid).toBe("1795547651289791");
    expect(decodeBody(reply.body)).toEqual([
      {
        type: "RESULT",
        threadTrace: 1,
        locale: "en-US",
        apiLevel: 1,
        payload: { className: "osrfResult", status: "OK", statusCode: 200, content: "hello" },
      },
      {
        type: "RESULT",
        threadTrace: 1,
        locale: "en-US",
        apiLevel: 1,
        payload: { className: "osrfResult", status: "OK", statusCode: 200, content: 42 },
      },
      {
        type: "STATUS",
        threadTrace: 1,
        locale: "en-US",
        apiLevel: 1,
        payload: { className: "osrfConnectStatus", status: "Request Complete", statusCode: 205 },
      },
    ]);
  });

  test("unknown method (sample K style): osrfMethodException 404", async () => {
    srfsh.send(stanzaFor("no.such.method", "[1]", "ts-404"));
    const reply = parseStanza(await nextMessage(srfsh));
    expect(reply.thread).toBe("ts-404");
    expect(decodeBody(reply.body)).toEqual([
      {
        type: "STATUS",
        threadTrace: 1,
        locale: "en-US",
        apiLevel: 1,
        payload: {
          className: "osrfMethodException",
          status: "Method [no.such.method] not found for service test.interop",
          statusCode: 404,
        },
      },
    ]);
  });
});

describe("registration and failure, as C listeners do them", () => {
  test("a service nobody registered: ejabberd bounces the C client's request (sample L)", async () => {
    srfsh.send(L_REQUEST);
    const got = await nextMessage(srfsh);
    expect(parseStanza(got)).toEqual(parseStanza(L_BOUNCE));
  });

  test("two C listeners of one class; the one that dies without unregistering is skipped", async () => {
    const second = "opensrf.math_listener_vm_1795547590.000002_2";
    const l2 = await cLogin(second);
    l2.send(registerText("opensrf.math", second));
    for (let i = 0; i < 100; i++) {
      const r = await runCli([
        "request",
        "--config",
        config,
        "router",
        "opensrf.router.info.stats.class",
        '"opensrf.math"',
      ]);
      if (Object.keys(JSON.parse(r.stdout.trim())).length === 2) break;
      await Bun.sleep(50);
    }
    // The sample's listener goes away without a word (killed).
    cListener.close();
    await waitOffline(MATH_LISTENER_JID);
    // Every request still reaches the live listener: forwards to the dead one bounce and are re-sent.
    for (let i = 0; i < 4; i++) {
      srfsh.send(F_REQUEST.replace("<thread>1795547651.059807.179554765128979</thread>", `<thread>fo-${i}</thread>`));
      const got = parseStanza(await nextMessage(l2));
      expect([got.to, got.thread, got.routerFrom]).toEqual([`opensrf@localhost/${second}`, `fo-${i}`, SRFSH_JID]);
    }
    const r = await runCli([
      "request",
      "--config",
      config,
      "router",
      "opensrf.router.info.stats.class",
      '"opensrf.math"',
    ]);
    expect(Object.keys(JSON.parse(r.stdout.trim()))).toEqual([`opensrf@localhost/${second}`]);
    // ejabberd's bounce (the whole message, type="error") is what told the router.
    expect(router.output).toContain(
      `node ${MATH_LISTENER_JID} of opensrf.math is unreachable (service-unavailable); removing it`,
    );

    // The last listener dies too: the caller gets a 503 on its threadTrace instead of a timeout.
    l2.close();
    await waitOffline(`opensrf@localhost/${second}`);
    srfsh.send(F_REQUEST.replace("<thread>1795547651.059807.179554765128979</thread>", "<thread>fo-last</thread>"));
    const reply = parseStanza(await nextMessage(srfsh));
    expect([reply.from, reply.thread, reply.xid]).toEqual([
      "router@localhost/opensrf.math",
      "fo-last",
      "1795547651289791",
    ]);
    expect(decodeBody(reply.body)).toEqual([
      {
        type: "STATUS",
        threadTrace: 1,
        locale: "en-US",
        apiLevel: 1,
        payload: {
          className: "osrfMethodException",
          status: "Service opensrf.math has no listener left (its last listener went away)",
          statusCode: 503,
        },
      },
    ]);
    await waitForClasses(["opensrf.settings", "opensrf.cslow", "opensrf.dbmath", "test.interop"]);
  });

  test("sample D registers the class again; sample C unregisters it and the class is gone", async () => {
    cListener = await cLogin(MATH_LISTENER);
    cListener.send(D_REGISTER);
    await waitForClasses(["opensrf.settings", "opensrf.cslow", "opensrf.dbmath", "test.interop", "opensrf.math"]);
    srfsh.send(F_REQUEST);
    expect(parseStanza(await nextMessage(cListener))).toEqual(parseStanza(F_DELIVERED));

    cListener.send(C_UNREGISTER);
    await waitForClasses(["opensrf.settings", "opensrf.cslow", "opensrf.dbmath", "test.interop"]);
    // With the class gone, so is router@localhost/opensrf.math: ejabberd bounces the request.
    srfsh.send(F_REQUEST);
    const bounce = parseStanza(await nextMessage(srfsh));
    expect([bounce.from, bounce.thread, bounce.error?.condition]).toEqual([
      "router@localhost/opensrf.math",
      "1795547651.059807.179554765128979",
      "service-unavailable",
    ]);
    expect(router.output).not.toMatch(/\[ERR /);
  });
});
