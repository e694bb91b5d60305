/**
 * The in-process baseline: the same handlers with no bus — the method function called
 * directly, and a whole stanza through the drone's service host (body decode, method
 * lookup, activity log line at the default level, replies encoded) into a memory transport.
 */
import { join } from "node:path";
import { createServiceHost } from "../src/app/host.ts";
import type { ServiceDefinition } from "../src/app/types.ts";
import { Client } from "../src/client/client.ts";
import { createLogger } from "../src/log/logger.ts";
import { encodeBody } from "../src/protocol/codec.ts";
import { request } from "../src/protocol/messages.ts";
import { MemoryTransport } from "../src/testing/doubles.ts";
import type { Stanza } from "../src/xmpp/types.ts";
import { ADD_PARAMS, ECHO_PARAMS } from "./relay.ts";
import { ROOT } from "./stack.ts";

/** Calls per second of each in-process path. */
export interface InProcessResult {
  case: string;
  perSecond: number;
}

async function rate(fn: () => unknown, ms: number): Promise<number> {
  for (let i = 0; i < 1000; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 200; i++) await fn();
    n += 200;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** Measures the handler calls and host round trips; `logfile` gets the activity lines. */
export async function runInProcess(logfile: string, ms: number): Promise<InProcessResult[]> {
  const definition = (await import(join(ROOT, "examples/math.ts"))).default as ServiceDefinition;
  const transport = new MemoryTransport();
  const logger = createLogger({ service: "opensrf.math", logfile, loglevel: 3 });
  const host = createServiceHost({
    service: "opensrf.math",
    definition,
    transport,
    client: new Client({ transport, routerName: "router", logger }),
    settings: { keepalive: 5, maxChunkSize: 51_200, maxBundleSize: 25_600 },
    logger,
    logProtect: [],
  });
  const stanza = (method: string, params: unknown[]): Stanza => ({
    to: transport.jid,
    from: "router@localhost/opensrf.math",
    thread: "1795547651.059807.179554765128979",
    body: encodeBody([request(1, method, params as never, { locale: "en-US", apiLevel: 1 })]),
    routerFrom: "opensrf@localhost/_benchhost_1795547651.056703_1",
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    xid: "1795547651289791",
  });
  const echo = stanza("opensrf.system.echo", ECHO_PARAMS);
  const add = stanza("add", ADD_PARAMS);
  const addHandler = definition.methods.find((m) => m.name === "add")!.handler;
  const ctx = {} as Parameters<typeof addHandler>[0];
  const out: InProcessResult[] = [];
  out.push({
    case: "add: handler function",
    perSecond: await rate(() => addHandler(ctx, ...(ADD_PARAMS as [number, number])), ms),
  });
  const viaHost = async (s: Stanza) => {
    await host.handle(s);
    transport.sent.length = 0;
  };
  out.push({ case: "echo: stanza through the service host", perSecond: await rate(() => viaHost(echo), ms) });
  out.push({ case: "add: stanza through the service host", perSecond: await rate(() => viaHost(add), ms) });
  await host.close(0);
  logger.close();
  return out;
}
