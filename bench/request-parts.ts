#!/usr/bin/env bun
/**
 * One part of a drone's request path, N times in a loop, to count its machine instructions
 * under valgrind: what a new drone interprets per request before its JIT tiers are warm.
 *
 *   bun bench/request-parts.ts PART [N]     # PART: none ipc-json ipc decode-json decode encode stanza check
 *
 * Counted with JavaScriptCore's interpreter only and a deterministic collector (counts then
 * repeat within ~0.3%; with concurrent marking they move by ±10% between runs):
 *
 *   BUN_JSC_useBaselineJIT=0 BUN_JSC_useConcurrentGC=0 BUN_JSC_numberOfGCMarkers=1 \
 *     valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=/tmp/cg \
 *     bun bench/request-parts.ts decode 1000
 *
 * then the `totals:` line of /tmp/cg-01 (the JavaScript thread); minus PART `none`, over N, is
 * instructions per call. The parts: the listener's IPC message parsed from its JSON text as
 * Bun's IPC does (`ipc-json`) and checked (`ipc`, both together), the request body's JSON
 * parsed (`decode-json`) and decoded (`decode`, the parse and the checks), an echo's replies
 * encoded (`encode`: two RESULTs and the STATUS, as a body), their stanza's XML (`stanza`),
 * the result's JSON check (`check`). bench/drone-path.ts counts the whole path the same way.
 */
import { findJsonProblem } from "../src/app/serializable.ts";
import { parseListenerMessage } from "../src/prefork/ipc.ts";
import { decodeBody, encodeBody } from "../src/protocol/codec.ts";
import { complete, request, result } from "../src/protocol/messages.ts";
import { completeStanza, encodeStanza } from "../src/xmpp/stanza.ts";
import { ECHO_PARAMS } from "./relay.ts";

const part = process.argv[2] ?? "none";
const n = Number(process.argv[3] ?? 1000);
const body = encodeBody([request(1, "opensrf.system.echo", ECHO_PARAMS)]);
const stanza = {
  to: "opensrf@localhost/opensrf.math_listener_benchhost_1795547578.318649_28589",
  from: "router@localhost/router",
  thread: "1795547651.059807.179554765128979",
  body,
  routerFrom: "opensrf@localhost/_benchhost_1795547651.056703_28979",
  routerTo: "",
  routerClass: "",
  routerCommand: "",
  xid: "1795547651289791",
};
const ipcText = JSON.stringify({ type: "request", stanza });
const replies = () => [...ECHO_PARAMS.map((p) => result(1, p)), complete(1)];
const replyBody = encodeBody(replies());
const drone = "opensrf@localhost/opensrf.math_drone_benchhost_1795547578.318649_28590";

const parts: Record<string, () => number> = {
  none: () => 0,
  "ipc-json": () => (JSON.parse(ipcText) as { type: string }).type.length,
  ipc: () => parseListenerMessage(JSON.parse(ipcText)).type.length,
  decode: () => decodeBody(body).length,
  "decode-json": () => (JSON.parse(body) as unknown[]).length,
  encode: () => encodeBody(replies()).length,
  stanza: () =>
    encodeStanza(
      completeStanza({ to: stanza.routerFrom, thread: stanza.thread, xid: stanza.xid, body: replyBody }, drone),
    ).length,
  check: () => (findJsonProblem(ECHO_PARAMS) === null ? 1 : 0),
};
const run = parts[part];
if (!run) {
  process.stderr.write(`request-parts: unknown part "${part}"; one of ${Object.keys(parts).join(", ")}\n`);
  process.exit(2);
}
let sum = 0;
for (let i = 0; i < n; i++) sum += run();
if (sum < 0) process.stdout.write(`${sum}\n`); // keeps the loop's work observable
