/**
 * Bad input: over a thousand generated malformed messages — broken JSON, wrong class hints,
 * missing fields, wrong types, unknown message types, huge strings, deep nesting, lone
 * surrogates, stray DISCONNECTs, results and statuses nobody asked for, messages for
 * threads a drone does not know, plus raw XML the XMPP server itself refuses (bad
 * entities, invalid UTF-8, …) — sent to the service's router JID (so they reach the
 * listener and its drones), to the listener JID directly, and to drone JIDs directly.
 *
 * Nothing may die; each message is answered with a STATUS where the protocol allows one
 * (it has a thread and carries, or may carry, a request) or logged with its reason; and the
 * service answers normally afterwards.
 */
import { describe, expect, test } from "bun:test";
import type { FaultStack } from "../../devkit/fault-stack.ts";
import { isAlive, waitUntil } from "../../devkit/load.ts";
import { TEST_USERS } from "../../devkit/osrf-config.ts";
import { firstTagAttr, RawXmppConnection, xmlEscape } from "../../devkit/raw-xmpp.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { makeResource } from "../../src/protocol/ids.ts";
import { complete, connect, disconnect, result } from "../../src/protocol/messages.ts";
import type { OsrfMessage } from "../../src/protocol/types.ts";
import type { XmppConnection } from "../../src/xmpp/connection.ts";
import type { OutgoingStanza, Stanza } from "../../src/xmpp/types.ts";
import { JSON_TRAPS, NOT_OSRF_MESSAGES } from "../harness/bad-bodies.ts";
import { useFaultStack } from "../harness/fault-suite.ts";
import { prng } from "../harness/prng.ts";

const SERVICE = "fault.input";

const APP = `
export default {
  methods: [
    { name: "work", argc: 1, handler: (_ctx, i) => [i, process.pid] },
    { name: "echo", handler: (_ctx, ...p) => p },
  ],
};
`;

let stack: FaultStack;
let attacker: XmppConnection;
const inbox = new Map<string, Stanza[]>();

useFaultStack(
  {
    services: [
      {
        name: SERVICE,
        app: APP,
        keepalive: 2,
        unix: {
          min_children: 2,
          max_children: 4,
          max_requests: 1_000_000,
          max_backlog_queue: 5000,
          max_requests_jitter: 0,
        },
      },
    ],
    // Debug level: messages that get no reply (stray DISCONNECT, RESULT, …) are logged with their reason.
    loglevel: 4,
  },
  async (s) => {
    stack = s;
    attacker = await stack.rawConnection("attacker");
    attacker.onStanza((st) => {
      const list = inbox.get(st.thread) ?? [];
      list.push(st);
      inbox.set(st.thread, list);
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Generated garbage

const REQ = (method: string, params: unknown = []) =>
  `[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}}}}]`;

/** Hand-written bad bodies: every shape of wrong we could think of. */
function badBodies(): string[] {
  const msg = (p: string) => `[{"__c":"osrfMessage","__p":${p}}]`;
  const reqP = (extra: string) => msg(`{"threadTrace":"1","type":"REQUEST",${extra}}`);
  return [
    " ",
    "x",
    "registering",
    ...NOT_OSRF_MESSAGES,
    msg("null"),
    msg("[]"),
    msg("{}"),
    msg('{"type":"REQUEST"}'),
    msg('{"threadTrace":"1"}'),
    msg('{"threadTrace":"1","type":"REQUEST"}'),
    reqP('"payload":null'),
    reqP('"payload":{"__c":"osrfMethod"}'),
    reqP('"payload":{"__c":"osrfMethod","__p":{}}'),
    reqP('"payload":{"__c":"osrfMethod","__p":{"method":42}}'),
    reqP('"payload":{"__c":"osrfMethod","__p":{"method":"work","params":{}}}'),
    reqP('"payload":{"__c":"osrfMethod","__p":{"method":"work","params":"x"}}'),
    // Wrong class hints.
    reqP('"payload":{"__c":"notAMethod","__p":{"method":"work"}}'),
    reqP('"payload":{"__c":"osrfResult","__p":{"method":"work"}}'),
    '[{"__c":"osrfMethod","__p":{"threadTrace":"1","type":"REQUEST"}}]',
    '[{"__c":"","__p":{"threadTrace":"1","type":"REQUEST"}}]',
    '[{"__c":null,"__p":{"threadTrace":"1","type":"REQUEST"}}]',
    '[{"__c":["osrfMessage"],"__p":{}}]',
    // Wrong types.
    msg('{"threadTrace":"x","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"work"}}}'),
    msg('{"threadTrace":-1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"work"}}}'),
    msg('{"threadTrace":1.5,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"work"}}}'),
    msg(
      '{"threadTrace":"99999999999999999999","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"work"}}}',
    ),
    msg('{"threadTrace":{},"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"work"}}}'),
    msg('{"threadTrace":"1","type":"REQUEST","locale":5,"payload":{"__c":"osrfMethod","__p":{"method":"work"}}}'),
    msg(
      '{"threadTrace":"1","type":"REQUEST","api_level":"one","payload":{"__c":"osrfMethod","__p":{"method":"work"}}}',
    ),
    msg('{"threadTrace":"1","type":"REQUEST","tz":[],"payload":{"__c":"osrfMethod","__p":{"method":"work"}}}'),
    // Unknown message types.
    msg('{"threadTrace":"1","type":"EXPLODE"}'),
    msg('{"threadTrace":"1","type":"request"}'),
    msg('{"threadTrace":"1","type":7}'),
    msg('{"threadTrace":"1","type":""}'),
    msg('{"threadTrace":"1","type":null}'),
    // Results and statuses nobody asked for, and broken ones.
    msg('{"threadTrace":"1","type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"abc"}}}'),
    msg(
      '{"threadTrace":"1","type":"RESULT","payload":{"__c":"osrfWhatever","__p":{"status":"OK","statusCode":"200"}}}',
    ),
    msg(
      '{"threadTrace":"1","type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":5,"statusCode":"200"}}}',
    ),
    encodeBody([result(1, "unsolicited")]),
    encodeBody([complete(1)]),
    // Stray DISCONNECTs.
    encodeBody([disconnect(1)]),
    encodeBody([disconnect(0), disconnect(7)]),
    // Prototype games.
    '[{"__proto__":{"polluted":true},"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"work","params":[1]}}}}]',
    '[{"__c":"osrfMessage","__p":{"__proto__":{"type":"REQUEST"},"threadTrace":"1"}}]',
    REQ("constructor"),
    REQ("__proto__"),
    REQ("toString"),
    REQ("hasOwnProperty", [1]),
    // Valid JSON, bad requests.
    REQ("no.such.method"),
    REQ(""),
    REQ("work"),
    REQ("work", [{ deep: [1, { x: null }] }]),
    REQ("echo", ["\u0000", "\ud800", "é€😀 <&> ' \""]),
    REQ(
      "opensrf.system.echo",
      Array.from({ length: 1000 }, (_, i) => i),
    ),
    // Escapes and XML-special text (escaped on the wire, literal in the body).
    ...JSON_TRAPS,
    "&bogus; &#0; &#xD800; <x/> ]]> <![CDATA[",
    REQ("echo", ["&amp;", "&#0;", "<body>", "]]>"]),
    // Huge strings and deep nesting.
    REQ("m".repeat(100_000)),
    `["${"x".repeat(1_000_000)}"]`,
    REQ("echo", ["y".repeat(500_000)]),
    `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
    `[${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}]`,
    `[${"[".repeat(200_000)}`,
    REQ("echo", [JSON.parse(`${"[".repeat(2000)}${"]".repeat(2000)}`)]),
    // Several messages, one bad.
    `[${REQ("work", [1]).slice(1, -1)},{"__c":"garbage"}]`,
  ];
}

// Raw control characters cannot travel in XML at all (a stanza holding one is not
// well-formed and the server closes the sender's stream), so they appear as JSON escapes.
const NOISE = [
  '"',
  "{",
  "}",
  "[",
  "]",
  ",",
  ":",
  "\\",
  "\\u0000",
  "\\ud800",
  "é",
  "😀",
  "\ud800",
  "\udfff",
  "-",
  "e",
  "null",
  "<",
  "&",
  "\n",
  " ",
];

/** Random mutations of a valid request: cuts, insertions, replacements, truncations. */
function fuzzBodies(n: number, seed: number): string[] {
  // Seeded, so every run sends the same garbage.
  const { next: rnd, pick } = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = REQ(pick(["work", "echo", "opensrf.system.echo"]), [i, "p"]);
    const edits = 1 + Math.floor(rnd() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * s.length);
      switch (Math.floor(rnd() * 4)) {
        case 0:
          s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 8));
          break;
        case 1:
          s = s.slice(0, at) + pick(NOISE) + s.slice(at);
          break;
        case 2:
          s = s.slice(0, at) + pick(NOISE) + s.slice(at + 1);
          break;
        default:
          s = s.slice(0, at);
      }
    }
    out.push(s);
  }
  return out;
}

interface Case {
  stanza: OutgoingStanza;
  /** A STATUS (or result) must come back on its thread. */
  answer: boolean;
}

/**
 * What the protocol lets a server answer: a threaded body that is garbage or carries a
 * request. (An empty body through the router is dropped by the listener, logged.)
 */
function answerable(body: string, thread: string, viaListener: boolean): boolean {
  if (thread === "" || (body === "" && viaListener)) return false;
  let msgs: OsrfMessage[];
  try {
    msgs = decodeBody(body);
  } catch {
    return true; // 400 Bad Request
  }
  return msgs.some((m) => m.type === "REQUEST" || m.type === "CONNECT");
}

function cases(to: string, label: string, bodies: string[], replies: boolean): Case[] {
  const out: Case[] = [];
  bodies.forEach((body, i) => {
    const thread = `${label}-${i}`;
    out.push({
      stanza: { to, thread, body, xid: `${label}-xid-${i}` },
      answer: replies && answerable(body, thread, to.startsWith("router@")),
    });
  });
  return out;
}

/** Raw XML the XMPP server must refuse (it closes the sender's stream): it never reaches us. */
const RAW_REFUSED = [
  "<message to='<TO>'><body>&bogus;</body></message>",
  "<message to='<TO>'><body>&#0;</body></message>",
  "<message to='<TO>'><body>&#xD800;</body></message>",
  "<message to='<TO>'><body>a & b</body></message>",
  "<message to='<TO>'><body>crossed</message></body>",
  "<message to='<TO>'><body>unclosed</message>",
  "<message to='<TO>' to='twice'><body>[]</body></message>",
  "<message to='<TO>'><body attr=noquotes>[]</body></message>",
  "<message to='<TO>'><body>\u0001</body></message>",
  "<!DOCTYPE x [<!ENTITY e 'boom'>]><message to='<TO>'><body>&e;</body></message>",
];
/** Invalid UTF-8 byte sequences inside a body. */
const RAW_BAD_UTF8 = [
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0xc3]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];
/** Raw XML that is valid but odd: it is delivered. */
const RAW_ODD = [
  "<message to='<TO>'><thread>raw-1</thread><body>[]</body><body>[1]</body></message>",
  "<message to='<TO>'><thread>raw-2</thread><body><nested>element</nested>[]</body></message>",
  `<message to='<TO>'><thread>raw-3</thread><body><![CDATA[${REQ("work", [3])}]]></body></message>`,
  "<message to='<TO>' type='chat'><thread>raw-4</thread><body>hello</body></message>",
  `<message to='<TO>' type='headline'><thread>raw-5</thread><body>${xmlEscape(REQ("work", [5]))}</body></message>`,
  "<message to='<TO>'><opensrf router_command='register' router_class='fault.input'/><thread>raw-6</thread><body>registering</body></message>",
  "<message to='<TO>' type='error'><thread>raw-7</thread><body>[]</body><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
  "<message to='<TO>'><thread>raw-8</thread><body>&#x5b;&#x5d;</body></message>",
];

/** Warning and error lines of a process's output, shortened, for failure messages. */
function problems(output: string): string {
  return output
    .split("\n")
    .filter((l) => /\[(WARN|ERR )/.test(l))
    .slice(-30)
    .map((l) => l.slice(0, 300))
    .join("\n");
}

/** A raw session logged in as OpenSRF's Perl clients do (legacy auth, password in clear). */
async function rawSession(): Promise<RawXmppConnection> {
  const c = await RawXmppConnection.connect({ host: stack.xmpp.host, port: stack.xmpp.port });
  await c.openStream({ to: stack.xmpp.domain });
  c.send(
    `<iq id='123' type='set'><query xmlns='jabber:iq:auth'><username>${TEST_USERS[0]![0]}</username>` +
      `<password>${xmlEscape(TEST_USERS[0]![1])}</password><resource>${makeResource("", "raw-attacker")}</resource></query></iq>`,
  );
  for (;;) {
    const answer = await c.nextStanza(5000);
    if (!answer.startsWith("<iq") || firstTagAttr(answer, "id") !== "123") continue;
    if (firstTagAttr(answer, "type") !== "result") throw new Error(`raw login failed: ${answer}`);
    return c;
  }
}

/** Writes bytes as they are, below the string API (invalid UTF-8 cannot be a JS string). */
function sendBytes(c: RawXmppConnection, bytes: Buffer): void {
  (c as unknown as { socket: { write(b: Buffer): void } }).socket.write(bytes);
}

/** True when the server closes the stream within `ms`. */
async function closedWithin(c: RawXmppConnection, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!c.closed && performance.now() < end) await Bun.sleep(20);
  return c.closed;
}

// ---------------------------------------------------------------------------------------------

describe("bad input", () => {
  test("≥ 1,000 malformed messages to the router JID, the listener JID and drone JIDs: nothing dies, each answered or logged", async () => {
    const serve = stack.serve(SERVICE);
    const listenerPid = stack.listenerPid(SERVICE);
    const routerPid = stack.router.pid;
    const stats = (await stack.client
      .request("router", "opensrf.router.info.stats.class", [SERVICE])
      .first()) as Record<string, number>;
    const listenerJid = Object.keys(stats)[0]!;
    expect(listenerJid).toContain(`${SERVICE}_listener_`);

    // Two drone JIDs, from two CONNECTed sessions; the sessions end, the drones stay.
    const sessions = [stack.client.session(SERVICE), stack.client.session(SERVICE)];
    await Promise.all(sessions.map((s) => s.connect()));
    const droneJids = [...new Set(sessions.map((s) => s.remote))];
    for (const s of sessions) s.disconnect();
    expect(droneJids.length).toBeGreaterThanOrEqual(1);
    for (const j of droneJids) expect(j).toContain(`${SERVICE}_drone_`);
    await Bun.sleep(300);
    const dronesBefore = stack.dronePids(SERVICE);

    const bad = badBodies();
    // CONNECTs through the router pin a drone for keepalive; one is enough there.
    const viaRouter = [...bad, encodeBody([connect(0)]), ...fuzzBodies(300, 1)];
    const all: Case[] = [
      ...cases(`router@localhost/${SERVICE}`, "router", viaRouter, true),
      ...cases(`router@localhost/${SERVICE}`, "router-nothread", bad.slice(0, 20), false).map((c) => ({
        ...c,
        stanza: { ...c.stanza, thread: "" },
      })),
      ...cases(`router@localhost/${SERVICE}`, "router-spoof", bad.slice(0, 20), true).map((c) => ({
        ...c,
        // Forged router fields: the class JID forwards it anyway, with the real sender as router_from.
        stanza: {
          ...c.stanza,
          routerFrom: "opensrf@localhost/someone-else",
          routerCommand: "register",
          routerClass: "x",
        },
      })),
      ...cases(listenerJid, "listener", [...bad, ...fuzzBodies(100, 2)], false),
      ...droneJids.flatMap((jid, d) =>
        cases(jid, `drone${d}`, [...bad, encodeBody([connect(0)]), ...fuzzBodies(150, 3 + d)], true),
      ),
    ];
    const raw = RAW_REFUSED.length * 2 + RAW_BAD_UTF8.length + RAW_ODD.length * 2;
    console.log(`fault-bad-input: sending ${all.length} generated stanzas and ${raw} raw ones`);
    expect(all.length + raw).toBeGreaterThanOrEqual(1000);

    for (const c of all) attacker.send(c.stanza);

    // Raw XML: refused input closes only the sender's own stream; it never reaches us.
    let refused = 0;
    const accepted: string[] = [];
    for (const to of [`router@localhost/${SERVICE}`, listenerJid]) {
      for (const xml of RAW_REFUSED) {
        const c = await rawSession();
        c.send(xml.replaceAll("<TO>", to));
        if (await closedWithin(c, 15_000)) refused++;
        else accepted.push(xml);
        c.close();
      }
    }
    for (const bytes of RAW_BAD_UTF8) {
      const c = await rawSession();
      c.send(`<message to='router@localhost/${SERVICE}'><thread>bad-utf8</thread><body>`);
      sendBytes(c, bytes);
      c.send(`</body></message>`);
      if (await closedWithin(c, 15_000)) refused++;
      else accepted.push(`bytes ${bytes.toString("hex")} in a body`);
      c.close();
    }
    const odd = await rawSession();
    for (const to of [`router@localhost/${SERVICE}`, droneJids[0]!])
      for (const xml of RAW_ODD) odd.send(xml.replaceAll("<TO>", to));
    await Bun.sleep(200);
    odd.close();

    // Every answerable one is answered with a status (or a result) on its own thread.
    const expected = all.filter((c) => c.answer);
    const missing = () => expected.filter((c) => !inbox.has(c.stanza.thread!));
    await waitUntil(
      `answers to ${expected.length} messages`,
      () => missing().length === 0,
      45_000,
      100,
      () =>
        `missing ${missing().length}: ${missing()
          .slice(0, 5)
          .map((c) => `${c.stanza.to} ${c.stanza.thread} ${String(c.stanza.body).slice(0, 120)}`)
          .join("\n")}\n` +
        `serve: ${problems(serve.output)}\nrouter: ${problems(stack.router.output)}\nxmpp: ${stack.xmpp.logTail(20)}`,
    );
    let statuses = 0;
    for (const c of expected) {
      const msgs = inbox.get(c.stanza.thread!)!.flatMap((s) => decodeBody(s.body));
      if (msgs.some((m) => m.type === "STATUS" && m.payload.statusCode >= 400)) statuses++;
    }
    // Nothing the protocol cannot answer was answered, except sessions' 408s.
    const unexpected = all.filter((c) => !c.answer && inbox.has(c.stanza.thread!) && c.stanza.thread !== "");
    const out = serve.output;
    const droppedAtListener = out.split(`dropping a message from ${attacker.jid}: not one of the routers`).length - 1;
    console.log(
      `fault-bad-input: ${expected.length} answerable, all answered (${statuses} with an error status); ` +
        `${all.length - expected.length} not answerable; ${droppedAtListener} dropped and logged by the listener; ` +
        `${refused} of ${RAW_REFUSED.length * 2 + RAW_BAD_UTF8.length} raw stanzas refused by the XMPP server (sender's stream closed)`,
    );
    expect(
      unexpected.map(
        (c) =>
          `${c.stanza.thread} ${JSON.stringify(c.stanza.body)} -> ${inbox
            .get(c.stanza.thread!)!
            .map((s) => s.body)
            .join(" | ")}`,
      ),
    ).toEqual([]);
    expect(accepted).toEqual([]);
    expect(droppedAtListener).toBeGreaterThanOrEqual(bad.length + 100);
    // Logged with their reasons.
    expect(out).toMatch(/bad message body from opensrf@localhost\/_attacker_/);
    expect(out).toMatch(/Received a non-error message with no thread from/);
    expect(out).toMatch(/ignoring a (RESULT|STATUS) message on thread/);
    expect(out).toMatch(/ignoring DISCONNECT on thread drone\d-\d+: no session open/);
    // Nothing died, nothing crashed.
    expect(isAlive(listenerPid)).toBe(true);
    expect(isAlive(routerPid)).toBe(true);
    for (const pid of dronesBefore) expect(isAlive(pid)).toBe(true);
    expect(out).not.toMatch(/ died | exited unexpectedly|exit during start-up/);
    expect(out).not.toMatch(/TypeError|RangeError|ReferenceError|Unhandled|uncaught|\[ERR .*unexpected failure/i);
    expect(stack.router.output).not.toMatch(/TypeError|RangeError|Unhandled|uncaught/i);
    expect(attacker.isOnline).toBe(true);

    // Still serving normally: stateless, and a session.
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stack.client.request(SERVICE, "work", [i]).first()),
    );
    expect(answers.map((v) => (v as number[])[0])).toEqual([...Array(20).keys()]);
    const session = stack.client.session(SERVICE);
    await session.connect();
    expect(await session.request("echo", ["still", "fine"]).collect()).toEqual([["still", "fine"]]);
    session.disconnect();
  }, 85_000);
});
