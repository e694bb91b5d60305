#!/usr/bin/env bun
/**
 * The JavaScript of a drone's request, in one process and without I/O: the listener's IPC
 * message as Bun hands it over (parsed from its JSON text), the check of it, the service host
 * on an echo or add stanza, the reply stanzas' XML as the connection writes them, and the
 * `available` message's JSON. What a new drone interprets and compiles for each request before
 * its JIT tiers are warm, so counting instructions from a cold start measures the warm-up
 * (JIT threads included):
 *
 *   bun bench/drone-path.ts [--requests=1000] [--method=echo|add] [--loglevel=1] [--warmup=N]
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null bun bench/drone-path.ts --requests=0
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null bun bench/drone-path.ts --requests=1000
 *
 * The difference of the two instruction counts, over 1000, is instructions per request. They
 * repeat within ~0.3% with the environment of bench/request-parts.ts (the interpreter alone, a
 * collector without concurrent marking) and `--separate-threads=yes`, reading the JavaScript
 * thread's totals; with the defaults GC threads move them by ±10% between runs.
 * Without valgrind it prints CPU µs per request by bucket of 100. --warmup=N first runs the
 * drone's own warm-up (src/prefork/warmup.ts) of N requests, as a drone does before `ready`.
 */
import { createServiceHost } from "../src/app/host.ts";
import type { ServiceDefinition } from "../src/app/types.ts";
import type { BusConnection } from "../src/bus/types.ts";
import { Client } from "../src/client/client.ts";
import type { ClientConfig } from "../src/config/types.ts";
import { createLogger } from "../src/log/logger.ts";
import { parseListenerMessage } from "../src/prefork/ipc.ts";
import { warmRequestPath } from "../src/prefork/warmup.ts";
import { encodeBody } from "../src/protocol/codec.ts";
import { request } from "../src/protocol/messages.ts";
import { encodeOutgoing } from "../src/xmpp/stanza.ts";
import type { OutgoingStanza, Stanza } from "../src/xmpp/types.ts";
import { opt } from "./args.ts";
import { ADD_PARAMS, ECHO_PARAMS } from "./relay.ts";

const requests = Number(opt("requests", "1000"));
const method = opt("method", "echo");
const loglevel = Number(opt("loglevel", "1"));
const warmup = Number(opt("warmup", "0"));

const settingsOf = { keepalive: 5, maxChunkSize: 51_200, maxBundleSize: 25_600 };
const CLIENT: ClientConfig = {
  domain: "localhost",
  username: "opensrf",
  passwd: "pw",
  port: 5222,
  server: "127.0.0.1",
  routerName: "router",
  routers: [],
  msgSizeWarn: 1_800_000,
  maxStanzaSize: 10_485_760,
  logfile: "/dev/null",
  loglevel,
};
const JID = "opensrf@localhost/opensrf.math_drone_benchhost_1795547578.318649_28589";
let written = 0;
/** Writes nothing: the stanza's XML is made as XmppConnection.send makes it, then dropped. */
const transport: BusConnection = {
  kind: "xmpp",
  address: JID,
  domain: "localhost",
  addresses: {
    router: (r, d) => `${r}@${d}`,
    service: (r, d, s) => `${r}@${d}/${s}`,
    routerCommands: (r, d) => `${r}@${d}/router`,
    domainOf: () => "localhost",
  },
  send(out: OutgoingStanza) {
    written += encodeOutgoing(out, JID).length;
  },
  wireText: (out: OutgoingStanza) => encodeOutgoing(out, JID),
  onMessage() {},
  onOnline() {},
  async close() {},
};
const logger = createLogger({ service: "opensrf.math", logfile: "/dev/null", loglevel });
const definition = (await import("../examples/math.ts")).default as ServiceDefinition;
const host = createServiceHost({
  service: "opensrf.math",
  definition,
  transport,
  client: new Client({ transport, routerName: "router", logger }),
  settings: settingsOf,
  logger,
  logProtect: [],
});
const body =
  method === "add"
    ? encodeBody([request(1, "add", ADD_PARAMS)])
    : encodeBody([request(1, "opensrf.system.echo", ECHO_PARAMS)]);
const stanza = (i: number): Stanza => ({
  to: "opensrf@localhost/opensrf.math_listener_benchhost_1795547578.318649_28589",
  from: "router@localhost/router",
  thread: `1795547651.059807.${179554765128979 + i}`,
  body,
  routerFrom: "opensrf@localhost/_benchhost_1795547651.056703_28979",
  routerTo: "",
  routerClass: "",
  routerCommand: "",
  xid: `${1795547651289791 + i}`,
});

let warmupMs = 0;
if (warmup > 0) {
  const r = await warmRequestPath({
    service: "opensrf.math",
    definition,
    client: CLIENT,
    log: { loglevel },
    settings: settingsOf,
    logProtect: [],
    encode: encodeOutgoing,
    busKind: "xmpp",
    requests: warmup,
  });
  if (r instanceof Error) throw r;
  warmupMs = r.ms;
}
const bucketUs: number[] = [];
let t0 = process.cpuUsage();
for (let i = 1; i <= requests; i++) {
  // Bun's IPC hands the drone a freshly parsed object per message.
  const msg = parseListenerMessage(JSON.parse(JSON.stringify({ type: "request", stanza: stanza(i) })));
  if (msg.type !== "request") throw new Error("not a request");
  await host.serve(msg.stanza);
  JSON.stringify({ type: "available", served: i, rssBytes: 1, done: [[method, 205, 0.1]] });
  if (i % 100 === 0) {
    const c = process.cpuUsage(t0);
    bucketUs.push((c.user + c.system) / 100);
    t0 = process.cpuUsage();
  }
}
await host.close(0);
logger.close();
if (bucketUs.length > 0) {
  process.stdout.write(
    `${method}, log level ${loglevel}: CPU µs per request by bucket of 100: ${bucketUs.map((u) => u.toFixed(0)).join(" ")}` +
      ` (${written} bytes of XML${warmup > 0 ? `; after a warm-up of ${warmup} requests in ${warmupMs.toFixed(1)} ms` : ""})\n`,
  );
}
process.exit(0);
