/**
 * `osrf-prefork serve` behind the C router, at the wire level, on ejabberd.
 *
 * Real OpenSRF C binaries cannot run here, so the C router and srfsh are emulated by raw
 * legacy-auth (digest) connections that write exactly the stanzas the real ones wrote in the
 * captured OpenSRF 3.3 session (samples D, F, H, J): the router's main JID receives the
 * listener's registration, the router's per-class JID forwards srfsh's request with
 * `router_from`, and the drone must answer srfsh directly with C's reply bodies.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type LegacySession, legacyLogin } from "../../devkit/legacy-auth.ts";
import { TEST_USERS, writeCoreConfig } from "../../devkit/osrf-config.ts";
import { CliProcess } from "../../devkit/processes.ts";
import { startXmppServer, type XmppServer } from "../../devkit/xmpp-server.ts";
import { parseStanza } from "../../src/xmpp/stanza.ts";
import type { Stanza } from "../../src/xmpp/types.ts";

const ROOT = resolve(import.meta.dir, "../..");
const SETTINGS = `<?xml version="1.0"?>
<opensrf version="0.0.3"><default><apps><opensrf.math>
  <keepalive>3</keepalive>
  <unix_config><min_children>1</min_children><max_children>2</max_children><max_requests>100</max_requests></unix_config>
</opensrf.math></apps></default></opensrf>
`;

let xmpp: XmppServer;
let dir: string;
let serve: CliProcess;
let cRouter: LegacySession; // router@localhost/router, as opensrf_router logs in
let cClass: LegacySession; // router@localhost/opensrf.math, opened by the C router on register
let srfsh: LegacySession;
let listenerJid: string;

/** Next `<message>` on a raw session, parsed; iq and other stanzas are skipped. */
async function nextMessage(s: LegacySession, timeoutMs = 10_000): Promise<{ xml: string; stanza: Stanza }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const xml = await s.nextStanza(Math.max(1, end - Date.now()));
    if (xml.startsWith("<message")) return { xml, stanza: parseStanza(xml) };
  }
}

/** The C router's forward of a caller's message (sample F, connection c5). */
function cForward(thread: string, xid: string, body: string): string {
  return (
    `<message to="${listenerJid}" from="${cClass.jid}"><opensrf router_from="${srfsh.jid}" router_to="" router_class="" ` +
    `router_command="" osrf_xid="${xid}"/><thread>${thread}</thread><body>${body}</body></message>`
  );
}

const login = (user: "opensrf" | "router", resource: string) =>
  legacyLogin({
    host: xmpp.host,
    port: xmpp.port,
    domain: xmpp.domain,
    user,
    password: TEST_USERS.find(([u]) => u === user)![1],
    resource,
    mode: "digest",
  });

beforeAll(async () => {
  xmpp = await startXmppServer({ kind: "ejabberd", users: TEST_USERS });
  dir = mkdtempSync(join(tmpdir(), "osrf-interop-c-"));
  writeFileSync(join(dir, "opensrf.xml"), SETTINGS);
  cRouter = await login("router", "router");
  cClass = await login("router", "opensrf.math");
  srfsh = await login("opensrf", "_vm_1795547651.056703_28979");
  serve = CliProcess.start([
    "serve",
    "--service",
    "opensrf.math",
    "--app",
    join(ROOT, "examples/math.ts"),
    "--config",
    writeCoreConfig(xmpp),
    "--settings",
    join(dir, "opensrf.xml"),
    "--logfile",
    "stderr",
    "--loglevel",
    "2",
  ]);
}, 60_000);

afterAll(async () => {
  if (serve) await serve.stop("SIGTERM");
  for (const s of [cRouter, cClass, srfsh]) s?.close();
  await xmpp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("serve behind the C router (wire emulation, ejabberd)", () => {
  test("the listener registers with the router exactly as a C listener does (sample D)", async () => {
    const { xml, stanza } = await nextMessage(cRouter, 30_000);
    listenerJid = stanza.from;
    expect(listenerJid).toMatch(/^opensrf@localhost\/opensrf\.math_listener_[^_]+_\d+\.\d+_\d+$/);
    expect(stanza).toMatchObject({
      to: "router@localhost/router",
      routerClass: "opensrf.math",
      routerCommand: "register",
      routerFrom: "",
      body: "registering",
    });
    // ejabberd re-serializes with single quotes; the router data must survive in <opensrf>.
    expect(xml).toContain("<opensrf ");
  });

  test("a forwarded srfsh request is answered directly to srfsh with C's reply body (samples F, H)", async () => {
    const thread = "1795547651.059807.179554765128979";
    const request =
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST",' +
      '"payload":{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]';
    cClass.send(cForward(thread, "1795547651289791", request));
    const { stanza } = await nextMessage(srfsh);
    expect(stanza.from).toMatch(/^opensrf@localhost\/opensrf\.math_drone_[^_]+_\d+\.\d+_\d+$/);
    expect(stanza.thread).toBe(thread);
    expect(stanza.xid).toBe("1795547651289791");
    expect(stanza.body).toBe(
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":4}}}},' +
        '{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]',
    );
  }, 30_000);

  test("a stateful session: CONNECT via the router, then straight to the drone, DISCONNECT (sample J)", async () => {
    const thread = "1795547651.063365.179554765128979";
    cClass.send(
      cForward(
        thread,
        "1795547651289792",
        '[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"CONNECT"}}]',
      ),
    );
    const connected = await nextMessage(srfsh);
    expect(connected.stanza.body).toBe(
      '[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Connection Successful","statusCode":"200"}}}}]',
    );
    const drone = connected.stanza.from;
    // srfsh now talks to the drone's JID directly, with no router data (sample J).
    srfsh.send(
      `<message to="${drone}" from="${srfsh.jid}"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289793"/>` +
        `<thread>${thread}</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST",` +
        `"payload":{"__c":"osrfMethod","__p":{"method":"add","params":[1,1]}}}}]</body></message>`,
    );
    const reply = await nextMessage(srfsh);
    expect(reply.stanza.from).toBe(drone);
    expect(reply.stanza.body).toContain('"content":2');
    expect(reply.stanza.body).toContain('"statusCode":"205"');
    srfsh.send(
      `<message to="${drone}" from="${srfsh.jid}"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289793"/>` +
        `<thread>${thread}</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"DISCONNECT"}}]</body></message>`,
    );
    // DISCONNECT gets no reply; the drone is free again and serves the next forward.
    cClass.send(
      cForward(
        "1795547651.064982.179554765128979",
        "1795547651289794",
        '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"no.such.method","params":[1]}}}}]',
      ),
    );
    const notFound = await nextMessage(srfsh);
    expect(notFound.stanza.body).toBe(
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfMethodException","__p":{"status":"Method [no.such.method] not found for service opensrf.math","statusCode":"404"}}}}]',
    );
  }, 30_000);

  test("SIGUSR1 sends the C unregister stanza (sample C)", async () => {
    serve.proc.kill("SIGUSR1");
    let { stanza } = await nextMessage(cRouter);
    // A periodic re-registration may come first; it is the same idempotent command.
    while (stanza.routerCommand === "register") ({ stanza } = await nextMessage(cRouter));
    expect(stanza).toMatchObject({
      from: listenerJid,
      routerClass: "opensrf.math",
      routerCommand: "unregister",
      body: "unregistering",
    });
  }, 30_000);
});
