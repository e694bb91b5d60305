import { describe, expect, spyOn, test } from "bun:test";
import {
  decodeBody,
  decodeMessage,
  encodeBody,
  encodeHeaderPrefix,
  encodeJson,
  encodeMessage,
} from "../../src/protocol/codec.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import {
  complete,
  connect,
  connectOk,
  disconnect,
  methodException,
  request,
  result,
  status,
} from "../../src/protocol/messages.ts";
import { StatusCode, Texts } from "../../src/protocol/status.ts";
import type { JsonValue, MessageHeader, OsrfMessage } from "../../src/protocol/types.ts";
import { prng } from "../harness/prng.ts";

/**
 * The `<message>` lines of the OpenSRF 3.3.0 wire capture (samples/opensrf-3.3-wire.txt),
 * verbatim: `<ms> c<conn> <C->S|S->C> <bytes>B: <stanza>`.
 */
const WIRE = `
    0.000 c1   C->S 254B: <message to="router@localhost/router" from="opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589"><opensrf router_from="" router_to="" router_class="opensrf.math" router_command="unregister" osrf_xid=""/><body>unregistering</body></message>
    0.535 c2   S->C 268B: <message xml:lang='en' to='router@localhost/router' from='opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589'><opensrf router_from='' router_to='' router_class='opensrf.math' router_command='unregister' osrf_xid=''/><body>unregistering</body></message>
 1014.140 c1   C->S 250B: <message to="router@localhost/router" from="opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589"><opensrf router_from="" router_to="" router_class="opensrf.math" router_command="register" osrf_xid=""/><body>registering</body></message>
 1014.348 c2   S->C 264B: <message xml:lang='en' to='router@localhost/router' from='opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589'><opensrf router_from='' router_to='' router_class='opensrf.math' router_command='register' osrf_xid=''/><body>registering</body></message>
 7450.047 c25  C->S 472B: <message to="router@localhost/router" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289790"/><thread>1795547651.059119.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"opensrf.router.info.class.list","params":[]}}}}]</body></message>
 7450.318 c2   C->S 493B: <message to="opensrf@localhost/_vm_1795547651.056703_28979" from="router@localhost/router"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid=""/><thread>1795547651.059119.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":null,"statusCode":"0","content":["opensrf.settings","opensrf.cslow","opensrf.math","opensrf.dbmath"]}}}}]</body></message>
 7450.338 c2   C->S 437B: <message to="opensrf@localhost/_vm_1795547651.056703_28979" from="router@localhost/router"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid=""/><thread>1795547651.059119.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]</body></message>
 7450.701 c25  C->S 454B: <message to="router@localhost/opensrf.math" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289791"/><thread>1795547651.059807.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]</body></message>
 7450.845 c5   C->S 520B: <message to="opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589" from="router@localhost/opensrf.math"><opensrf router_from="opensrf@localhost/_vm_1795547651.056703_28979" router_to="" router_class="" router_command="" osrf_xid="1795547651289791"/><thread>1795547651.059807.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]</body></message>
 7450.938 c1   S->C 724B: <message xml:lang='en' to='opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589' from='router@localhost/opensrf.math'><opensrf router_from='opensrf@localhost/_vm_1795547651.056703_28979' router_to='' router_class='' router_command='' osrf_xid='1795547651289791'/><body>[{&quot;__c&quot;:&quot;osrfMessage&quot;,&quot;__p&quot;:{&quot;threadTrace&quot;:&quot;1&quot;,&quot;locale&quot;:&quot;en-US&quot;,&quot;ingress&quot;:&quot;srfsh&quot;,&quot;api_level&quot;:1,&quot;type&quot;:&quot;REQUEST&quot;,&quot;payload&quot;:{&quot;__c&quot;:&quot;osrfMethod&quot;,&quot;__p&quot;:{&quot;method&quot;:&quot;add&quot;,&quot;params&quot;:[2,2]}}}}]</body><thread>1795547651.059807.179554765128979</thread></message>
 7451.241 c26  C->S 474B: <message to="router@localhost/opensrf.dbmath" from="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289791"/><thread>1795547651.060350.179554765128594</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]</body></message>
 7453.426 c26  C->S 672B: <message to="opensrf@localhost/_vm_1795547651.056703_28979" from="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289791"/><thread>1795547651.059807.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":4}}}},{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]</body></message>
 7453.501 c25  S->C 1056B: <message xml:lang='en' to='opensrf@localhost/_vm_1795547651.056703_28979' from='opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594'><opensrf router_from='' router_to='' router_class='' router_command='' osrf_xid='1795547651289791'/><body>[{&quot;__c&quot;:&quot;osrfMessage&quot;,&quot;__p&quot;:{&quot;threadTrace&quot;:&quot;1&quot;,&quot;locale&quot;:&quot;en-US&quot;,&quot;api_level&quot;:1,&quot;type&quot;:&quot;RESULT&quot;,&quot;payload&quot;:{&quot;__c&quot;:&quot;osrfResult&quot;,&quot;__p&quot;:{&quot;status&quot;:&quot;OK&quot;,&quot;statusCode&quot;:&quot;200&quot;,&quot;content&quot;:4}}}},{&quot;__c&quot;:&quot;osrfMessage&quot;,&quot;__p&quot;:{&quot;threadTrace&quot;:&quot;1&quot;,&quot;locale&quot;:&quot;en-US&quot;,&quot;api_level&quot;:1,&quot;type&quot;:&quot;STATUS&quot;,&quot;payload&quot;:{&quot;__c&quot;:&quot;osrfConnectStatus&quot;,&quot;__p&quot;:{&quot;status&quot;:&quot;Request Complete&quot;,&quot;statusCode&quot;:&quot;205&quot;}}}}]</body><thread>1795547651.059807.179554765128979</thread></message>
 7453.689 c25  C->S 477B: <message to="router@localhost/opensrf.math" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289792"/><thread>1795547651.062793.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"opensrf.system.echo","params":["hello",42]}}}}]</body></message>
 7454.024 c26  C->S 858B: <message to="opensrf@localhost/_vm_1795547651.056703_28979" from="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289792"/><thread>1795547651.062793.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":"hello"}}}},{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":42}}}},{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]</body></message>
 7454.251 c25  C->S 367B: <message to="router@localhost/opensrf.math" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289792"/><thread>1795547651.063365.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"CONNECT"}}]</body></message>
 7454.364 c5   C->S 433B: <message to="opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589" from="router@localhost/opensrf.math"><opensrf router_from="opensrf@localhost/_vm_1795547651.056703_28979" router_to="" router_class="" router_command="" osrf_xid="1795547651289792"/><thread>1795547651.063365.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"CONNECT"}}]</body></message>
 7454.518 c26  C->S 498B: <message to="opensrf@localhost/_vm_1795547651.056703_28979" from="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289792"/><thread>1795547651.063365.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Connection Successful","statusCode":"200"}}}}]</body></message>
 7454.769 c25  C->S 488B: <message to="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289793"/><thread>1795547651.063365.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"add","params":[1,1]}}}}]</body></message>
 7455.544 c26  C->S 672B: <message to="opensrf@localhost/_vm_1795547651.056703_28979" from="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289793"/><thread>1795547651.063365.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":2}}}},{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]</body></message>
 7455.770 c25  C->S 404B: <message to="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289793"/><thread>1795547651.063365.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"DISCONNECT"}}]</body></message>
 7455.861 c25  C->S 463B: <message to="router@localhost/opensrf.math" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289794"/><thread>1795547651.064982.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"no.such.method","params":[1]}}}}]</body></message>
 7456.223 c26  C->S 537B: <message to="opensrf@localhost/_vm_1795547651.056703_28979" from="opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289794"/><thread>1795547651.064982.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS","payload":{"__c":"osrfMethodException","__p":{"status":"Method [no.such.method] not found for service opensrf.math","statusCode":"404"}}}}]</body></message>
 7456.543 c25  C->S 460B: <message to="router@localhost/opensrf.nosuchservice" from="opensrf@localhost/_vm_1795547651.056703_28979"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid="1795547651289795"/><thread>1795547651.065597.179554765128979</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"foo","params":[]}}}}]</body></message>
 7456.687 c25  S->C 865B: <message xml:lang='en' to='opensrf@localhost/_vm_1795547651.056703_28979' from='router@localhost/opensrf.nosuchservice' type='error'><opensrf router_from='' router_to='' router_class='' router_command='' osrf_xid='1795547651289795'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xml:lang='en' xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>User session not found</text></error><body>[{&quot;__c&quot;:&quot;osrfMessage&quot;,&quot;__p&quot;:{&quot;threadTrace&quot;:&quot;1&quot;,&quot;locale&quot;:&quot;en-US&quot;,&quot;ingress&quot;:&quot;srfsh&quot;,&quot;api_level&quot;:1,&quot;type&quot;:&quot;REQUEST&quot;,&quot;payload&quot;:{&quot;__c&quot;:&quot;osrfMethod&quot;,&quot;__p&quot;:{&quot;method&quot;:&quot;foo&quot;,&quot;params&quot;:[]}}}}]</body><thread>1795547651.065597.179554765128979</thread></message>
 5416.292 c14  C->S 491B: <message to="router@localhost/opensrf.settings" from="opensrf@localhost/c_launcher_vm_1795547649.023390_28969"><opensrf router_from="" router_to="" router_class="" router_command="" osrf_xid=""/><thread>1795547649.025364.179554764928969</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"opensrf","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"opensrf.settings.host_config.get","params":["localhost"]}}}}]</body></message>
 5416.667 c15  C->S 550B: <message to="opensrf@localhost/opensrf.settings_listener_localhost_28044" from="router@localhost/opensrf.settings"><opensrf router_from="opensrf@localhost/c_launcher_vm_1795547649.023390_28969" router_to="" router_class="" router_command="" osrf_xid=""/><thread>1795547649.025364.179554764928969</thread><body>[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"opensrf","api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"opensrf.settings.host_config.get","params":["localhost"]}}}}]</body></message>
 5419.564 c17  C->S 3877B: <message to='opensrf@localhost/c_launcher_vm_1795547649.023390_28969' from='opensrf@localhost/opensrf.settings_drone_at_localhost_28049'><opensrf router_command='' router_class='' osrf_xid=''/><thread>1795547649.025364.179554764928969</thread><body>[{"__c":"osrfMessage","__p":{"payload":{"__p":{"status":"OK","content":{"activeapps":{"appname":["opensrf.settings","opensrf.math","opensrf.dbmath","opensrf.cslow"]},"server_type":"prefork","cache":{"global":{"servers":{"server":"127.0.0.1:11232"},"max_cache_time":86400}},"apps":{"opensrf.validator":{"unix_config":{"max_spare_children":5,"max_children":15,"unix_log":"opensrf.validator_unix.log","min_spare_children":3,"min_children":5,"unix_sock":"opensrf.validator_unix.sock","unix_pid":"opensrf.validator_unix.pid","max_requests":1000},"max_requests":17,"app_settings":{"validators":{"emailaddress":{"modules":{"b_dns":{"check_mx_a":1,"ignore_ips":"127.0.0.1,67.215.65.132","implementation":"OpenSRF::Application::Validator::EmailAddress::DNS","check_aaaa":0},"a_regex":{"implementation":"OpenSRF::Application::Validator::EmailAddress::Regex"}}}}},"stateless":1,"keepalive":1,"implementation":"OpenSRF::Application::Validator","language":"perl"},"opensrf.math":{"unix_config":{"unix_sock":"opensrf.math_unix.sock","min_children":5,"min_spare_children":2,"unix_log":"opensrf.math_unix.log","max_children":15,"max_spare_children":5,"max_requests":1000,"unix_pid":"opensrf.math_unix.pid"},"implementation":"libosrf_math.so","stateless":1,"keepalive":3,"language":"c"},"opensrf.cslow":{"keepalive":3,"stateless":1,"implementation":"libosrf_cslow.so","language":"c","unix_config":{"min_children":5,"min_spare_children":2,"unix_sock":"opensrf.cslow_unix.sock","max_children":15,"max_spare_children":5,"max_backlog_queue":10,"unix_log":"opensrf.cslow_unix.log","max_requests":1000,"unix_pid":"opensrf.cslow_unix.pid"}},"opensrf.settings":{"max_requests":17,"unix_config":{"unix_pid":"opensrf.settings_unix.pid","max_requests":1000,"unix_log":"opensrf.settings_unix.log","max_spare_children":5,"max_children":15,"unix_sock":"opensrf.settings_unix.sock","min_spare_children":3,"min_children":5},"keepalive":1,"implementation":"OpenSRF::Application::Settings","stateless":1,"language":"perl"},"opensrf.persist":{"unix_config":{"min_spare_children":2,"unix_sock":"opensrf.persist_unix.sock","min_children":5,"max_spare_children":5,"max_children":25,"unix_log":"opensrf.persist_unix.log","max_requests":1000,"unix_pid":"opensrf.persist_unix.pid"},"max_requests":97,"app_settings":{"dbfile":"/openils/var/persist-override.db"},"keepalive":1,"implementation":"OpenSRF::Application::Persist","stateless":1,"language":"perl"},"opensrf.dbmath":{"unix_config":{"max_children":15,"max_spare_children":5,"unix_log":"opensrf.dbmath_unix.log","unix_sock":"opensrf.dbmath_unix.sock","min_spare_children":2,"min_children":5,"unix_pid":"opensrf.dbmath_unix.pid","max_requests":1000},"keepalive":3,"stateless":1,"implementation":"libosrf_dbmath.so","language":"c"},"opensrf.slooooooow":{"max_requests":100,"unix_config":{"max_requests":1000,"unix_pid":"opensrf.slooooooow_unix.pid","min_children":2,"unix_sock":"opensrf.slooooooow_unix.sock","min_spare_children":1,"max_children":5,"max_spare_children":2,"unix_log":"opensrf.slooooooow_unix.log","max_backlog_queue":10},"stateless":1,"implementation":"OpenSRF::Application::Slooooooow","keepalive":1,"language":"perl"}},"dirs":{"sock":"/openils/var/lock","pid":"/openils/var/run","conf":"/openils/conf","log":"/openils/var/log"}},"statusCode":200},"__c":"osrfResult"},"threadTrace":"1","ingress":"opensrf","type":"RESULT","tz":null,"locale":"en-US"}},{"__c":"osrfMessage","__p":{"ingress":"opensrf","locale":"en-US","tz":null,"type":"STATUS","threadTrace":"1","payload":{"__c":"osrfConnectStatus","__p":{"statusCode":205,"status":"Request Complete"}}}}]</body></message>
`;

interface WireLine {
  dir: "C->S" | "S->C";
  conn: string;
  stanza: string;
  /** Unescaped `<body>` text. */
  body: string;
}

function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|quot|apos|lt|gt|amp);/g, (_, e: string) => {
    if (e[0] === "#") return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return { quot: '"', apos: "'", lt: "<", gt: ">", amp: "&" }[e] as string;
  });
}

const LINE = /^\s*[0-9.]+ (c[0-9]+)\s+(C->S|S->C) [0-9]+B: (.*)$/;

function parseWire(text: string): WireLine[] {
  const out: WireLine[] = [];
  for (const raw of text.split("\n")) {
    const m = LINE.exec(raw);
    if (!m) continue;
    const stanza = m[3] as string;
    const body = /<body>(.*?)<\/body>/.exec(stanza);
    if (!body) continue;
    out.push({ conn: m[1] as string, dir: m[2] as WireLine["dir"], stanza, body: unescapeXml(body[1] as string) });
  }
  return out;
}

const wire = parseWire(WIRE);
const jsonBodies = wire.filter((l) => l.body.startsWith("["));
// Written by C processes: C->S with C's double-quoted attributes (Perl uses single quotes).
const cBodies = jsonBodies.filter((l) => l.dir === "C->S" && l.stanza.startsWith('<message to="'));
const perlBody = jsonBodies.find((l) => l.dir === "C->S" && l.stanza.startsWith("<message to='"));
const serverDelivered = jsonBodies.filter((l) => l.dir === "S->C");

function bodyContaining(needle: string): string {
  const hit = cBodies.find((l) => l.body.includes(needle));
  if (!hit) throw new Error(`no sample body contains ${needle}`);
  return hit.body;
}

function expectProtocolError(fn: () => unknown, field: string): ProtocolError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).field).toBe(field);
  return err as ProtocolError;
}

describe("sample capture", () => {
  test("the capture parses into the expected stanzas", () => {
    expect(wire.length).toBe(28);
    expect(cBodies.length).toBe(20);
    expect(serverDelivered.length).toBe(3);
    expect(perlBody).toBeDefined();
  });

  test("every C-written body re-encodes byte for byte", () => {
    for (const line of cBodies) {
      expect(encodeBody(decodeBody(line.body))).toBe(line.body);
    }
  });

  test("bodies delivered by ejabberd (&quot; escaped) decode like the originals", () => {
    for (const line of serverDelivered) {
      expect(line.body).not.toContain("&quot;");
      const msgs = decodeBody(line.body);
      expect(cBodies.some((c) => c.body === encodeBody(msgs))).toBe(true);
    }
  });

  test("Perl reply: numeric statusCode, tz null, no api_level, own key order", () => {
    const msgs = decodeBody((perlBody as WireLine).body);
    expect(msgs.length).toBe(2);
    const [res, st] = msgs as [OsrfMessage, OsrfMessage];
    expect(res.type).toBe("RESULT");
    if (res.type !== "RESULT") return;
    expect(res.threadTrace).toBe(1);
    expect(res.locale).toBe("en-US");
    expect(res.ingress).toBe("opensrf");
    expect("tz" in res).toBe(false);
    expect(res.apiLevel).toBe(1);
    expect(res.payload.className).toBe("osrfResult");
    expect(res.payload.status).toBe("OK");
    expect(res.payload.statusCode).toBe(200);
    const content = res.payload.content as { activeapps: { appname: string[] } };
    expect(content.activeapps.appname).toEqual(["opensrf.settings", "opensrf.math", "opensrf.dbmath", "opensrf.cslow"]);
    expect(st).toStrictEqual({
      threadTrace: 1,
      apiLevel: 1,
      locale: "en-US",
      ingress: "opensrf",
      type: "STATUS",
      payload: { className: "osrfConnectStatus", status: "Request Complete", statusCode: 205 },
    });
    // Re-encoded the C way: C's key order, string codes, api_level added.
    expect(encodeBody([st])).toBe(
      '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"opensrf","api_level":1,' +
        '"type":"STATUS","payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]',
    );
  });

  test("router reply with status null (sample E)", () => {
    const body = bodyContaining('"status":null');
    const [m] = decodeBody(body);
    expect(m).toStrictEqual({
      threadTrace: 1,
      apiLevel: 1,
      locale: "en-US",
      type: "RESULT",
      payload: {
        className: "osrfResult",
        status: null,
        statusCode: 0,
        content: ["opensrf.settings", "opensrf.cslow", "opensrf.math", "opensrf.dbmath"],
      },
    });
  });

  test("request with ingress (sample F)", () => {
    const [m] = decodeBody(bodyContaining('"params":[2,2]'));
    expect(m).toStrictEqual({
      threadTrace: 1,
      apiLevel: 1,
      locale: "en-US",
      ingress: "srfsh",
      type: "REQUEST",
      payload: { method: "add", params: [2, 2] },
    });
  });
});

describe("message constructors reproduce the C bodies", () => {
  test("RESULT + 205 bundle (sample H)", () => {
    expect(encodeBody([result(1, 4), complete(1)])).toBe(bodyContaining('"content":4'));
  });
  test("echo bundle (sample I)", () => {
    expect(encodeBody([result(1, "hello"), result(1, 42), complete(1)])).toBe(bodyContaining('"content":"hello"'));
  });
  test("request (sample F)", () => {
    expect(encodeBody([request(1, "add", [2, 2], { ingress: "srfsh" })])).toBe(bodyContaining('"params":[2,2]'));
  });
  test("CONNECT, connect OK, DISCONNECT (sample J)", () => {
    expect(encodeBody([connect()])).toBe(bodyContaining('"type":"CONNECT"'));
    expect(encodeBody([connectOk(0)])).toBe(bodyContaining("Connection Successful"));
    expect(encodeBody([disconnect(1)])).toBe(bodyContaining('"type":"DISCONNECT"'));
  });
  test("method exception (sample K)", () => {
    const text = Texts.methodNotFound("no.such.method", "opensrf.math");
    expect(encodeBody([methodException(1, StatusCode.NOTFOUND, text)])).toBe(bodyContaining("osrfMethodException"));
  });
  test("header options: defaults and overrides", () => {
    expect(result(3, null)).toStrictEqual({
      threadTrace: 3,
      locale: "en-US",
      apiLevel: 1,
      type: "RESULT",
      payload: { className: "osrfResult", status: "OK", statusCode: 200, content: null },
    });
    const m = status(2, "osrfConnectStatus", 408, "Disconnected on timeout", {
      locale: "fr-CA",
      tz: "America/Toronto",
      ingress: "web",
      apiLevel: 2,
    });
    expect(m).toStrictEqual({
      threadTrace: 2,
      locale: "fr-CA",
      tz: "America/Toronto",
      ingress: "web",
      apiLevel: 2,
      type: "STATUS",
      payload: { className: "osrfConnectStatus", status: "Disconnected on timeout", statusCode: 408 },
    });
    // undefined fields (e.g. copied from a message without a locale) fall back to defaults
    expect(complete(1, { locale: undefined, tz: undefined })).toStrictEqual(complete(1));
  });
});

describe("decodeBody", () => {
  const wrap = (p: Record<string, unknown>) => JSON.stringify([{ __c: "osrfMessage", __p: p }]);

  test("threadTrace and statusCode as numbers or digit strings", () => {
    const [m] = decodeBody(
      wrap({
        threadTrace: 7,
        type: "STATUS",
        payload: { __c: "osrfConnectStatus", __p: { status: "Request Complete", statusCode: 205 } },
      }),
    );
    expect(m?.threadTrace).toBe(7);
    expect(m?.type === "STATUS" && m.payload.statusCode).toBe(205);
    const [n] = decodeBody(wrap({ threadTrace: "0012", type: "CONNECT" }));
    expect(n?.threadTrace).toBe(12);
  });

  test("defaults: api_level 1, params [], content null; extras ignored", () => {
    const msgs = decodeBody(
      JSON.stringify([
        {
          __c: "osrfMessage",
          __p: { threadTrace: "1", type: "REQUEST", payload: { __c: "osrfMethod", __p: { method: "m" } } },
        },
        {
          __c: "osrfMessage",
          __p: {
            threadTrace: "1",
            type: "REQUEST",
            payload: { __c: "osrfMethod", __p: { method: "m", params: null } },
          },
        },
        {
          __c: "osrfMessage",
          extra: 1,
          __p: {
            threadTrace: "2",
            api_level: "1",
            type: "RESULT",
            future_field: { x: 1 },
            payload: {
              __c: "osrfResultPartialComplete",
              __p: { status: "Partial Response Finalized", statusCode: "204", more: true },
            },
          },
        },
      ]),
    );
    expect(msgs).toStrictEqual([
      { threadTrace: 1, apiLevel: 1, type: "REQUEST", payload: { method: "m", params: [] } },
      { threadTrace: 1, apiLevel: 1, type: "REQUEST", payload: { method: "m", params: [] } },
      {
        threadTrace: 2,
        apiLevel: 1,
        type: "RESULT",
        payload: {
          className: "osrfResultPartialComplete",
          status: "Partial Response Finalized",
          statusCode: 204,
          content: null,
        },
      },
    ]);
  });

  test("nested class-hinted params and content pass through untouched", () => {
    const obj = { __c: "aou", __p: [1, "Example Branch", null, { __c: "aout", __p: [2] }] };
    const body = encodeBody([request(1, "open-ils.actor.org_unit.retrieve", [obj, "x"]), result(1, obj)]);
    const [req, res] = decodeBody(body);
    expect(req?.type === "REQUEST" && req.payload.params).toEqual([obj, "x"]);
    expect(res?.type === "RESULT" && res.payload.content).toEqual(obj);
    expect(encodeBody(decodeBody(body))).toBe(body);
  });

  test("STATUS accepts any class name", () => {
    const [m] = decodeBody(
      wrap({
        threadTrace: "1",
        type: "STATUS",
        payload: { __c: "osrfServerError", __p: { status: "boom", statusCode: "500" } },
      }),
    );
    expect(m?.type === "STATUS" && m.payload.className).toBe("osrfServerError");
  });

  test("empty array is zero messages", () => {
    expect(decodeBody("[]")).toEqual([]);
  });

  test("an empty body (C on Redis writes null for a payload it cannot parse) is named as such", () => {
    const e = expectProtocolError(() => decodeBody(""), "body");
    expect(e.message).toBe("bad osrfMessage at body: empty: the message carries no osrfMessage array");
  });

  test("errors name the field", () => {
    const e = expectProtocolError(() => decodeBody(wrap({ threadTrace: "1", type: "FOO" })), "body[0].__p.type");
    expect(e.message).toBe(
      'bad osrfMessage at body[0].__p.type: expected one of CONNECT, DISCONNECT, REQUEST, RESULT, STATUS, got "FOO"',
    );
    expectProtocolError(() => decodeBody(wrap({ threadTrace: "-1", type: "CONNECT" })), "body[0].__p.threadTrace");
    expectProtocolError(() => decodeBody(wrap({ threadTrace: 1.5, type: "CONNECT" })), "body[0].__p.threadTrace");
    expectProtocolError(() => decodeBody(wrap({ type: "CONNECT" })), "body[0].__p.threadTrace");
    expectProtocolError(
      () =>
        decodeBody(
          wrap({ threadTrace: "1", type: "REQUEST", payload: { __c: "osrfMethod", __p: { method: 5, params: [] } } }),
        ),
      "body[0].__p.payload.__p.method",
    );
  });

  test("decodeMessage takes a parsed object and a path", () => {
    const m = decodeMessage({ __c: "osrfMessage", __p: { threadTrace: 3, type: "DISCONNECT" } }, "x[9]");
    expect(m).toStrictEqual({ threadTrace: 3, apiLevel: 1, type: "DISCONNECT" });
    expectProtocolError(() => decodeMessage({ __c: "osrfMessage", __p: { threadTrace: 3 } }, "x[9]"), "x[9].__p.type");
  });
});

describe("encodeBody", () => {
  test("C key order with tz and ingress; absent locale written as en-US", () => {
    const m: OsrfMessage = {
      threadTrace: 4,
      tz: "America/Chicago",
      ingress: "srfsh",
      apiLevel: 1,
      type: "REQUEST",
      payload: { method: "opensrf.system.echo", params: [] },
    };
    expect(encodeBody([m])).toBe(
      '[{"__c":"osrfMessage","__p":{"threadTrace":"4","locale":"en-US","tz":"America/Chicago","ingress":"srfsh",' +
        '"api_level":1,"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"opensrf.system.echo","params":[]}}}}]',
    );
  });

  test("api_level 0 is omitted, as C does", () => {
    expect(encodeMessage({ ...connect(0), apiLevel: 0 })).toBe(
      '{"__c":"osrfMessage","__p":{"threadTrace":"0","locale":"en-US","type":"CONNECT"}}',
    );
  });

  test("strings escaped like C: non-ASCII and DEL as lowercase \\uxxxx, body pure ASCII", () => {
    const text = 'café ☃ 😀 \u0001\u007f\n\t"\\/<&>';
    const body = encodeBody([result(1, { [text]: text })]);
    const esc = String.raw`"caf\u00e9 \u2603 \ud83d\ude00 \u0001\u007f\n\t\"\\/<&>"`;
    expect(body).toContain(`"content":{${esc}:${esc}}`);
    expect(/^[\x20-\x7e]*$/.test(body)).toBe(true);
    const [m] = decodeBody(body);
    expect(m?.type === "RESULT" && m.payload.content).toEqual({ [text]: text });
  });

  test("lone surrogates survive as escapes", () => {
    const body = encodeBody([result(1, "a\ud800b\udfff")]);
    expect(body).toContain(String.raw`"content":"a\ud800b\udfff"`);
    const [m] = decodeBody(body);
    expect(m?.type === "RESULT" && m.payload.content).toBe("a\ud800b\udfff");
  });

  test("deeply nested content (100k levels) encodes without overflowing", () => {
    const depth = 100_000;
    let arr: JsonValue = "é";
    for (let i = 0; i < depth; i++) arr = [arr];
    expect(encodeJson(arr)).toBe(`${"[".repeat(depth)}"\\u00e9"${"]".repeat(depth)}`);
    let obj: JsonValue = 1;
    for (let i = 0; i < depth; i++) obj = { k: obj, u: null };
    expect(encodeJson(obj)).toBe(`${'{"k":'.repeat(depth)}1${',"u":null}'.repeat(depth)}`);
    // and a decoded deep body re-encodes to the same text
    const body = encodeBody([request(1, "deep", [arr])]);
    expect(encodeBody(decodeBody(body))).toBe(body);
  });

  test("a deep value is written by the codec's own walk, never handed whole to JSON.stringify", () => {
    // JSC's JSON.stringify checks every level against all enclosing ones past ~25k levels:
    // seconds of CPU for one 80 kB body of brackets, before it throws.
    let deep: JsonValue = [1, "é"];
    let expected = '[1,"\\u00e9"]';
    for (let i = 0; i < 30_000; i++) {
      deep = i % 2 ? [deep] : { k: deep };
      expected = i % 2 ? `[${expected}]` : `{"k":${expected}}`;
    }
    const stringify = spyOn(JSON, "stringify");
    try {
      const text = encodeJson(deep);
      expect(stringify.mock.calls.filter(([v]) => typeof v === "object" && v !== null)).toEqual([]);
      expect(text).toBe(expected);
    } finally {
      stringify.mockRestore();
    }
    // A shallow one still takes the native path.
    const shallow = { a: [1, 2, { b: "c" }] };
    const native = spyOn(JSON, "stringify");
    try {
      expect(encodeJson(shallow)).toBe('{"a":[1,2,{"b":"c"}]}');
      expect(native.mock.calls.map(([v]) => v)).toEqual([shallow]);
    } finally {
      native.mockRestore();
    }
  });

  test("encodeJson follows JSON.stringify for undefined, non-finite and toJSON, also when deep", () => {
    const v = {
      a: undefined,
      b: [undefined, Number.NaN, Number.POSITIVE_INFINITY],
      c: new Date(0),
    } as unknown as JsonValue;
    expect(encodeJson(v)).toBe(JSON.stringify(v));
    let deep: unknown = v;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(encodeJson(deep as JsonValue)).toBe(`${"[".repeat(100_000)}${JSON.stringify(v)}${"]".repeat(100_000)}`);
  });

  test("unrepresentable messages throw ProtocolError with the field", () => {
    expectProtocolError(() => encodeBody([result(1, 1), result(-1, 1)]), "body[1].__p.threadTrace");
    expectProtocolError(() => encodeBody([result(1.5, 1)]), "body[0].__p.threadTrace");
    expectProtocolError(
      () => encodeBody([status(1, "osrfConnectStatus", 20.5, "x")]),
      "body[0].__p.payload.__p.statusCode",
    );
    expectProtocolError(() => encodeBody([status(1, "", 200, "x")]), "body[0].__p.payload.__c");
    expectProtocolError(
      () => encodeBody([{ threadTrace: 1, apiLevel: 1, type: "NOPE" } as unknown as OsrfMessage]),
      "body[0].__p.type",
    );
  });

  test("cyclic content is a TypeError", () => {
    const a: unknown[] = [];
    a.push(a);
    expect(() => encodeBody([result(1, a as JsonValue)])).toThrow(TypeError);
  });
});

describe("round trip of random messages", () => {
  const { next: rand, int } = prng(0xc0ffee);
  const ALPHABET = ["a", "Z", "0", " ", '"', "\\", "/", "<", "&", "é", "☃", "😀", "\n", "\u0000", "\u007f", "\u2028"];
  const str = () => Array.from({ length: int(8) }, () => ALPHABET[int(ALPHABET.length)]).join("");
  function value(depth: number): JsonValue {
    switch (depth > 3 ? int(4) : int(7)) {
      case 0:
        return null;
      case 1:
        return rand() < 0.5;
      case 2:
        return rand() < 0.5 ? int(1e6) - 5e5 : (rand() - 0.5) * 1e6;
      case 3:
        return str();
      case 4:
        return Array.from({ length: int(4) }, () => value(depth + 1));
      case 5:
        return Object.fromEntries(Array.from({ length: int(4) }, () => [str(), value(depth + 1)]));
      default:
        return { __c: str() || "x", __p: value(depth + 1) };
    }
  }
  function message(): OsrfMessage {
    const h = {
      locale: rand() < 0.8 ? "en-US" : str(),
      ...(rand() < 0.3 ? { tz: str() } : {}),
      ...(rand() < 0.3 ? { ingress: str() } : {}),
      apiLevel: 1,
    };
    const t = int(1000);
    switch (int(5)) {
      case 0:
        return connect(t, h);
      case 1:
        return disconnect(t, h);
      case 2:
        return request(
          t,
          str(),
          Array.from({ length: int(4) }, () => value(0)),
          h,
        );
      case 3: {
        const r = result(t, value(0), h);
        if (rand() < 0.2) r.payload.status = null;
        return r;
      }
      default:
        return status(t, str() || "osrfConnectStatus", int(600), str(), h);
    }
  }

  test("decodeBody(encodeBody(msgs)) returns the messages", () => {
    for (let i = 0; i < 300; i++) {
      const msgs = Array.from({ length: 1 + int(3) }, message);
      const body = encodeBody(msgs);
      expect(decodeBody(body)).toEqual(msgs);
      expect(encodeBody(decodeBody(body))).toBe(body);
    }
  });
});

describe("decodeBody reads own fields only", () => {
  test("fields on a polluted Object.prototype are not read as the message's", () => {
    const proto = Object.prototype as Record<string, unknown>;
    const polluted = { tz: "Mars/Olympus", ingress: "evil", api_level: 9, status: "forged" };
    Object.assign(proto, polluted);
    try {
      const [m] = decodeBody(
        '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"RESULT","payload":{"__c":"osrfResult","__p":{"statusCode":"200","content":1}}}}]',
      );
      // Read as own properties: through the polluted prototype every object "has" them.
      expect(Object.hasOwn(m!, "tz")).toBe(false);
      expect(Object.hasOwn(m!, "ingress")).toBe(false);
      expect(m?.apiLevel).toBe(1);
      expect(m?.type === "RESULT" && m.payload.status).toBeNull();
      proto.type = "REQUEST";
      expect(() => decodeBody('[{"__c":"osrfMessage","__p":{"threadTrace":"1"}}]')).toThrow(ProtocolError);
    } finally {
      for (const k of [...Object.keys(polluted), "type"]) delete proto[k];
    }
  });
});

describe("encodeHeaderPrefix", () => {
  test("repeats and changes of every header field, in a random order: always the header given", () => {
    const headers: MessageHeader[] = [];
    for (const threadTrace of [1, 2])
      for (const locale of [undefined, "en-US", "fr-CA"])
        for (const tz of [undefined, "America/Toronto"])
          for (const ingress of [undefined, "srfsh"])
            for (const apiLevel of [0, 1]) {
              const h: MessageHeader = { threadTrace, apiLevel };
              if (locale !== undefined) h.locale = locale;
              if (tz !== undefined) h.tz = tz;
              if (ingress !== undefined) h.ingress = ingress;
              headers.push(h);
            }
    const expected = (h: MessageHeader) =>
      `{"__c":"osrfMessage","__p":{"threadTrace":"${h.threadTrace}","locale":"${h.locale ?? "en-US"}"` +
      (h.tz !== undefined ? `,"tz":"${h.tz}"` : "") +
      (h.ingress !== undefined ? `,"ingress":"${h.ingress}"` : "") +
      (h.apiLevel > 0 ? `,"api_level":${h.apiLevel}` : "") +
      `,"type":`;
    const { next: rand } = prng(13);
    for (let i = 0; i < 2000; i++) {
      // Runs of the same header as well as changes: half the time the previous one again.
      const h = headers[Math.floor(rand() * headers.length)] as MessageHeader;
      expect(encodeHeaderPrefix(h)).toBe(expected(h));
      expect(encodeHeaderPrefix({ ...h })).toBe(expected(h));
    }
  });

  test("a bad threadTrace is refused even right after a good header", () => {
    expect(encodeHeaderPrefix({ threadTrace: 1, apiLevel: 1 })).toContain('"threadTrace":"1"');
    expect(() => encodeHeaderPrefix({ threadTrace: 1.5, apiLevel: 1 })).toThrow(ProtocolError);
    expect(() => encodeHeaderPrefix({ threadTrace: Number.NaN, apiLevel: 1 })).toThrow(ProtocolError);
  });
});
