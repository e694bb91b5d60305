/**
 * Warming a new drone's request path before it reports `ready`.
 *
 * JavaScriptCore compiles a function to machine code only after it has run many times, and
 * each drone process compiles on its own. A drone retired after max_requests (1000 in the
 * stock settings) spends much of its life in the interpreter and its JIT threads: measured
 * 2–3× the CPU per request of a warm one over its first few hundred requests
 * (bench/drone-age.ts). So before `ready` the drone runs synthetic requests through the same
 * code a real one takes — the IPC message check, the service host (body decode, method
 * lookup, the activity line, reply encoding), a session's CONNECT and DISCONNECT, the bus's
 * wire encoding of each reply — into a transport that drops what it is given.
 *
 * Only the system method `opensrf.system.echo` is called: the service's own methods may
 * have effects, and never run outside a real request. Log lines go to the null device,
 * through a logger of the drone's own format and level.
 */
import { devNull } from "node:os";
import { createServiceHost } from "../app/host.ts";
import type { HostSettings, ServiceDefinition } from "../app/types.ts";
import type { BusConnection, BusKind, OutgoingBusMessage } from "../bus/types.ts";
import { Client } from "../client/client.ts";
import type { ClientConfig } from "../config/types.ts";
import { encodeBody } from "../protocol/codec.ts";
import { connect, disconnect, request } from "../protocol/messages.ts";
import { parseListenerMessage } from "./ipc.ts";
import { preforkLogger } from "./logging.ts";

/** What {@link warmRequestPath} needs: the drone's own service, settings and bus. */
export interface WarmupOptions {
  service: string;
  definition: ServiceDefinition;
  /** The drone's client section: bus, log format and masking as its real logger has them. */
  client: ClientConfig;
  log: { loglevel: number; format?: "osrf" | "json" };
  settings: HostSettings;
  logProtect: readonly string[];
  /** How the bus writes a message (the connection's own encoder, see `wireEncoder`). */
  encode: (message: OutgoingBusMessage, from: string) => string;
  busKind: BusKind;
  /** Synthetic listener messages to run (one in 10 is a CONNECT + REQUEST + DISCONNECT set). */
  requests: number;
  /** Messages between two turns of the event loop, so a login in progress keeps moving. */
  batch?: number;
}

/** What a warm-up did (logged at debug level; tests read it). */
export interface WarmupReport {
  /** Listener messages run (a session counts as one). */
  messages: number;
  /** Wire texts made, and their total length. */
  wireTexts: number;
  wireChars: number;
  ms: number;
}

/**
 * Runs `requests` synthetic listener messages through a service host of its own, wired to a
 * transport that only encodes. Never throws: a warm-up that fails leaves a drone that is
 * merely cold, so the failure is returned for the caller to log.
 */
export async function warmRequestPath(o: WarmupOptions): Promise<WarmupReport | Error> {
  const t0 = performance.now();
  const address = `${o.client.username}@${o.client.domain}/${o.service}_drone_warmup`;
  const report: WarmupReport = { messages: 0, wireTexts: 0, wireChars: 0, ms: 0 };
  const transport: BusConnection = {
    kind: o.busKind,
    address,
    domain: o.client.domain,
    addresses: {
      router: (r, d) => `${r}@${d}`,
      service: (r, d, s) => `${r}@${d}/${s}`,
      routerCommands: (r, d) => `${r}@${d}/router`,
      domainOf: () => o.client.domain,
    },
    send(m) {
      report.wireTexts++;
      report.wireChars += o.encode(m, address).length;
    },
    onMessage() {},
    onOnline() {},
    flush() {},
    wireText: (m) => o.encode(m, address),
    async close() {},
  };
  const log = preforkLogger(o.service, "drone", o.client, { ...o.log, logfile: devNull });
  try {
    const host = createServiceHost({
      service: o.service,
      definition: o.definition,
      transport,
      client: new Client({ transport, routerName: o.client.routerName, logger: log }),
      settings: o.settings,
      logger: log,
      logProtect: o.logProtect,
      onRequestDone: () => {},
    });
    const batch = o.batch ?? 50;
    const caller = `${o.client.username}@${o.client.domain}/_warmup_${process.pid}`;
    const base = Date.now();
    for (let i = 1; i <= o.requests; i++) {
      const thread = `${base}.${process.pid}.${i}`;
      const stanza = (body: string) => ({
        to: address,
        from: `${o.client.routerName}@${o.client.domain}/router`,
        thread,
        body,
        routerFrom: caller,
        routerTo: "",
        routerClass: "",
        routerCommand: "",
        xid: `${base}${i}`,
      });
      const params = ["warm-up", i];
      if (i % 10 === 0) {
        // A session as a drone serves one: CONNECT from the listener, then the caller's own.
        await host.serve(checked(stanza(encodeBody([connect(1)]))));
        await host.serve(stanza(encodeBody([request(2, "opensrf.system.echo", params)])));
        await host.serve(stanza(encodeBody([disconnect(3)])));
      } else {
        await host.serve(checked(stanza(encodeBody([request(1, "opensrf.system.echo", params)]))));
      }
      report.messages++;
      if (i % batch === 0) await new Promise<void>((r) => setImmediate(r));
    }
    await host.close(0);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  } finally {
    log.close();
  }
  report.ms = performance.now() - t0;
  return report;
}

/** The stanza as the drone's IPC handler receives it: through the listener-message check. */
function checked<T extends object>(stanza: T): T {
  const msg = parseListenerMessage({ type: "request", stanza });
  if (msg.type !== "request") throw new Error("warm-up: not a request");
  return msg.stanza as T;
}
