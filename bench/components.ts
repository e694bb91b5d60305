#!/usr/bin/env bun
/**
 * What one request's pieces cost, each timed on its own in a loop: XML decode and encode of
 * a stanza, JSON decode and encode of a body, the service host with and without its
 * activity log line, a log line by itself, and an IPC round trip with Bun's "json" and
 * "advanced" serialization (CPU of both processes, from /proc); what the listener does with a
 * request, on XMPP and on Redis. Plus the megabyte fast paths
 * of the protocol layer: cutting a large result into partials, escaping accented text.
 *
 *   bun bench/components.ts [--quick]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServiceHost } from "../src/app/host.ts";
import type { ServiceDefinition } from "../src/app/types.ts";
import { Client } from "../src/client/client.ts";
import { createLogger } from "../src/log/logger.ts";
import { requestMessage } from "../src/prefork/ipc.ts";
import { chunkText, OSRF_MSG_CHUNK_SIZE } from "../src/protocol/chunking.ts";
import { decodeBody, encodeBody, encodeJson } from "../src/protocol/codec.ts";
import { complete, request, result } from "../src/protocol/messages.ts";
import { decodeEnvelope } from "../src/redis/envelope.ts";
import { RespReader } from "../src/redis/resp.ts";
import { MemoryTransport } from "../src/testing/doubles.ts";
import { encodeOutgoing, encodeStanza, StanzaReader } from "../src/xmpp/stanza.ts";
import { StreamParser } from "../src/xmpp/stream-parser.ts";
import type { Stanza } from "../src/xmpp/types.ts";
import { cpuSeconds } from "./costs.ts";
import { best } from "./parse.ts";
import { ECHO_PARAMS } from "./relay.ts";
import { ROOT } from "./stack.ts";

/** One measured piece: microseconds per operation. */
export interface ComponentResult {
  piece: string;
  micros: number;
}

const HEADER = { locale: "en-US", apiLevel: 1 };

async function timeEach(ms: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < 2000; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 200; i++) await fn();
    n += 200;
  }
  return ((performance.now() - t0) * 1000) / n;
}

/** CPU µs per IPC round trip in the parent and in the child, with Bun's `serialization`. */
async function ipcRoundTrip(serialization: "json" | "advanced", stanza: Stanza, n: number): Promise<[number, number]> {
  let left = 0;
  let done!: () => void;
  let finished = new Promise<void>((r) => (done = r));
  const child = Bun.spawn({
    cmd: [process.execPath, join(import.meta.dir, "ipc-echo-child.ts")],
    serialization,
    stdout: "inherit",
    stderr: "inherit",
    ipc() {
      if (--left <= 0) done();
      else child.send({ type: "request", stanza });
    },
  });
  // A warm-up run of the same length, then the measured one.
  left = n;
  child.send({ type: "request", stanza });
  await finished;
  finished = new Promise<void>((r) => (done = r));
  left = n;
  const parent0 = process.cpuUsage();
  const child0 = cpuSeconds(child.pid);
  child.send({ type: "request", stanza });
  await finished;
  const parent = process.cpuUsage(parent0);
  const childCpu = cpuSeconds(child.pid) - child0;
  child.kill();
  await child.exited;
  return [(parent.user + parent.system) / n, (childCpu * 1e6) / n];
}

/** Measures every piece for about `ms` each. */
export async function runComponents(ms: number): Promise<ComponentResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "osrf-bench-parts-"));
  const out: ComponentResult[] = [];
  try {
    const reqBody = encodeBody([request(1, "opensrf.system.echo", ECHO_PARAMS, HEADER)]);
    const replyBody = encodeBody([
      result(1, ECHO_PARAMS[0]!, HEADER),
      result(1, ECHO_PARAMS[1]!, HEADER),
      complete(1, HEADER),
    ]);
    const stanza: Stanza = {
      to: "opensrf@localhost/opensrf.math_listener_benchhost_1795547578.318649_28589",
      from: "router@localhost/opensrf.math",
      thread: "1795547651.059807.179554765128979",
      body: reqBody,
      routerFrom: "opensrf@localhost/_benchhost_1795547651.056703_28979",
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: "1795547651289791",
    };
    // As ejabberd delivers it: single quotes, every `"` of the body as &quot;.
    const delivered = encodeStanza(stanza)
      .replace(/="([^"]*)"/g, "='$1'")
      .replace(/<body>(.*)<\/body>/s, (_m, b: string) => `<body>${b.replaceAll('"', "&quot;")}</body>`);
    const parser = new StreamParser({
      childReader: (name) => (name === "message" ? new StanzaReader(() => {}) : undefined),
    });
    parser.write("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    out.push({
      piece: `XML: read a delivered request stanza (${delivered.length} B)`,
      micros: await timeEach(ms, () => parser.write(delivered)),
    });
    // What the listener does with each request: read it, and make the IPC message for the
    // drone (Bun serializes that with JSON.stringify). Decoded bodies, as before lazy bodies,
    // against the listener's lazy ones, which travel as they came.
    for (const lazyBody of [false, true]) {
      let got: Stanza | undefined;
      const p = new StreamParser({
        childReader: (name) =>
          name === "message"
            ? new StanzaReader(
                (s) => {
                  got = s;
                },
                { lazyBody },
              )
            : undefined,
      });
      p.write("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
      out.push({
        piece: `listener: read a delivered request and serialize it for the drone (${lazyBody ? "lazy body" : "decoded body"})`,
        micros: await timeEach(ms, () => {
          p.write(delivered);
          return JSON.stringify(requestMessage(got!)).length;
        }),
      });
    }
    // The same on Redis: the BLPOP reply off the socket, the element decoded, the IPC message.
    for (const [what, params] of [
      ["echo request", ECHO_PARAMS],
      ["60 KB echo request", ["x".repeat(60_000)]],
    ] as const) {
      const queue = "opensrf:service:opensrf:localhost:opensrf.math";
      const element = JSON.stringify({
        to: "opensrf:service:_:_:opensrf.math",
        from: "opensrf:client:opensrf:localhost:benchhost:28979:1b910cb6",
        thread: stanza.thread,
        osrf_xid: stanza.xid,
        body: JSON.parse(encodeBody([request(1, "opensrf.system.echo", [...params], HEADER)])),
      });
      const wire = Buffer.from(
        `*2\r\n$${queue.length}\r\n${queue}\r\n$${Buffer.byteLength(element)}\r\n${element}\r\n`,
      );
      const reader = new RespReader();
      out.push({
        piece: `listener (Redis): read a popped ${what} (${wire.length} B) and serialize it for the drone`,
        micros: await timeEach(ms, () => {
          const [reply] = reader.push(wire) as [[string, string]];
          const m = decodeEnvelope(reply[1]);
          m.fromQueue = "opensrf.math";
          return JSON.stringify(requestMessage(m)).length;
        }),
      });
    }
    out.push({
      piece: "XML: write the echo reply stanza",
      micros: await timeEach(ms, () =>
        encodeOutgoing({ to: stanza.routerFrom, thread: stanza.thread, body: replyBody, xid: stanza.xid }, stanza.to),
      ),
    });
    out.push({ piece: "JSON: decode the request body", micros: await timeEach(ms, () => decodeBody(reqBody)) });
    out.push({
      piece: "JSON: encode the echo reply body (2 results + complete)",
      micros: await timeEach(ms, () =>
        encodeBody([result(1, ECHO_PARAMS[0]!, HEADER), result(1, ECHO_PARAMS[1]!, HEADER), complete(1, HEADER)]),
      ),
    });

    // Megabyte inputs: the best of a few runs (a timed loop of them would take minutes).
    const bigResult = JSON.stringify("x".repeat(1 << 20));
    out.push({
      piece: "chunking: cut a 1 MB result into 50 KB partials",
      micros: best(() => chunkText(bigResult, OSRF_MSG_CHUNK_SIZE), 5) * 1000,
    });
    const accented = "é".repeat(500_000) + "x".repeat(500_000);
    out.push({
      piece: "JSON: encode 1 MB of half-accented text (every é as \\u00e9)",
      micros: best(() => encodeJson(accented), 5) * 1000,
    });

    const definition = (await import(join(ROOT, "examples/math.ts"))).default as ServiceDefinition;
    for (const [label, logfile, loglevel] of [
      ["service host: echo stanza in, reply out (log level 1)", "/dev/null", 1],
      ["service host: the same with the activity line (level 3, file)", join(dir, "host.log"), 3],
    ] as const) {
      const transport = new MemoryTransport();
      const logger = createLogger({ service: "opensrf.math", logfile, loglevel });
      const host = createServiceHost({
        service: "opensrf.math",
        definition,
        transport,
        client: new Client({ transport, routerName: "router", logger }),
        settings: { keepalive: 5, maxChunkSize: 51_200, maxBundleSize: 25_600 },
        logger,
        logProtect: [],
      });
      out.push({
        piece: label,
        micros: await timeEach(ms, async () => {
          await host.serve(stanza);
          transport.sent.length = 0;
        }),
      });
      await host.close(0);
      logger.close();
    }
    const logger = createLogger({ service: "opensrf.math", logfile: join(dir, "lines.log"), loglevel: 3 });
    out.push({
      piece: "log: one activity line to a file",
      micros: await timeEach(ms, () =>
        logger.activity(`Running opensrf.math opensrf.system.echo [ "hello", 42 ]`, "17"),
      ),
    });
    logger.close();

    const n = Math.max(500, Math.round(ms * 10));
    for (const mode of ["json", "advanced"] as const) {
      const [parent, child] = await ipcRoundTrip(mode, stanza, n);
      out.push({ piece: `IPC "${mode}": request → reply round trip, listener side (CPU)`, micros: parent });
      out.push({ piece: `IPC "${mode}": the same, drone side (CPU)`, micros: child });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** The results as a table. */
export function formatComponents(rows: ComponentResult[]): string {
  return ["| piece | µs |", "|---|---:|", ...rows.map((r) => `| ${r.piece} | ${r.micros.toFixed(1)} |`)].join("\n");
}

if (import.meta.main) {
  const rows = await runComponents(process.argv.includes("--quick") ? 200 : 1000);
  process.stdout.write(`${formatComponents(rows)}\n`);
  process.exit(0);
}
