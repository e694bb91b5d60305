/**
 * A service served IN-PROCESS on a real XMPP server, without the prefork machinery: one
 * XMPP login as `<service>_listener…`, a {@link Client} sharing that connection (for
 * `ctx.call`), and the application host answering every stanza that is not a reply to the
 * client. It registers with the router like a listener and runs the service's `init` and
 * `childInit` the way a drone would, so tests exercise the application runtime end to end
 * over the real bus.
 *
 * Every stanza the service sends and receives is recorded ({@link WireTap}) so tests can
 * assert the exact osrfMessages on the wire, not just what a client made of them.
 */
import { hostname } from "node:os";
import { createServiceHost } from "../src/app/host.ts";
import type { ServiceDefinition, ServiceEnv, ServiceHost } from "../src/app/types.ts";
import { tapBus } from "../src/bus/tap.ts";
import type { BusConnection } from "../src/bus/types.ts";
import { Client } from "../src/client/client.ts";
import type { Clock } from "../src/clock/clock.ts";
import type { Logger } from "../src/log/types.ts";
import { OSRF_MSG_BUNDLE_SIZE, OSRF_MSG_CHUNK_SIZE } from "../src/protocol/chunking.ts";
import { decodeBody } from "../src/protocol/codec.ts";
import { makeResource } from "../src/protocol/ids.ts";
import type { OsrfMessage } from "../src/protocol/types.ts";
import { XmppConnection } from "../src/xmpp/connection.ts";
import { parseStanza } from "../src/xmpp/stanza.ts";
import type { OutgoingStanza, Stanza } from "../src/xmpp/types.ts";
import { TEST_USERS, type XmppEndpoint } from "./osrf-config.ts";
import { quietLogger } from "./quiet-logger.ts";

const MAX_STANZA = 10 * 1024 * 1024;

/** One osrfMessage exactly as it is written in a `<body>` (class hints, string codes). */
export interface RawOsrfMessage {
  __c: string;
  __p: {
    threadTrace: string;
    locale?: string;
    tz?: string;
    ingress?: string;
    api_level?: number;
    type: string;
    payload?: { __c: string; __p: Record<string, unknown> };
  };
}

/** A recorded stanza, with its body decoded two ways. */
export interface WireStanza extends Stanza {
  dir: "send" | "recv";
  /** The XML as our side wrote it (sent stanzas only; "" for received ones). */
  xml: string;
  /** The body as raw JSON (class hints and string status codes kept); [] when not JSON. */
  raw: RawOsrfMessage[];
  /** The body through the protocol decoder; [] when it does not decode (e.g. "registering"). */
  messages: OsrfMessage[];
}

function record(dir: "send" | "recv", stanza: Stanza, xml: string): WireStanza {
  let raw: RawOsrfMessage[] = [];
  let messages: OsrfMessage[] = [];
  if (stanza.body.startsWith("[")) {
    try {
      raw = JSON.parse(stanza.body) as RawOsrfMessage[];
      messages = decodeBody(stanza.body);
    } catch {
      // Left empty: tests looking at a bad body read `body` itself.
    }
  }
  return { ...stanza, dir, xml, raw, messages };
}

/** Everything one connection sent and received, in order. */
export class WireTap {
  readonly records: WireStanza[] = [];
  private waiters: Array<{ pred: (s: WireStanza) => boolean; resolve: (s: WireStanza) => void }> = [];

  /** @internal */
  add(s: WireStanza): void {
    this.records.push(s);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(s)) return true;
      w.resolve(s);
      return false;
    });
  }

  /** Stanzas sent, optionally only those matching `pred`. */
  sent(pred: (s: WireStanza) => boolean = () => true): WireStanza[] {
    return this.records.filter((s) => s.dir === "send" && pred(s));
  }

  /** Stanzas received, optionally only those matching `pred`. */
  received(pred: (s: WireStanza) => boolean = () => true): WireStanza[] {
    return this.records.filter((s) => s.dir === "recv" && pred(s));
  }

  /** Stanzas sent with this xid, in order. */
  sentWithXid(xid: string): WireStanza[] {
    return this.sent((s) => s.xid === xid);
  }

  /** Stanzas sent on this thread, in order. */
  sentOnThread(thread: string): WireStanza[] {
    return this.sent((s) => s.thread === thread);
  }

  /** Resolves with the first record (already there or arriving later) matching `pred`. */
  waitFor(pred: (s: WireStanza) => boolean, timeoutMs = 10_000, what = "a matching stanza"): Promise<WireStanza> {
    const have = this.records.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (s: WireStanza) => {
        clearTimeout(timer);
        resolve(s);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }
}

/**
 * Wraps `conn` so that everything it sends is recorded (parsed back from the exact XML
 * written) and installs `handler` for incoming stanzas, recording them first.
 */
function tappedTransport(conn: XmppConnection, tap: WireTap, handler: (s: Stanza) => void): BusConnection {
  const transport = tapBus(conn, (dir, xml) => {
    if (dir === "send") tap.add(record("send", parseStanza(xml), xml));
  });
  // Received stanzas are recorded from the decoded Stanza (bounces keep their error).
  conn.onStanza((s) => {
    tap.add(record("recv", s, ""));
    handler(s);
  });
  return transport;
}

function connectAs(xmpp: XmppEndpoint, resource: string, logger: Logger): Promise<XmppConnection> {
  return XmppConnection.connect({
    host: xmpp.host,
    port: xmpp.port,
    domain: xmpp.domain,
    username: TEST_USERS[0]![0],
    password: TEST_USERS[0]![1],
    resource,
    maxStanzaSize: MAX_STANZA,
    logger,
    reconnect: false,
  });
}

/** Options of {@link startInProcessService}. */
export interface InProcessServiceOptions {
  xmpp: XmppEndpoint;
  /** The service name served and registered (may differ from the definition's name). */
  service: string;
  definition: ServiceDefinition;
  /** Stateful session idle timeout, seconds (default 5). */
  keepalive?: number;
  /** The host's keepalive and close-grace timers (default: real ones), e.g. a manual clock. */
  clock?: Clock;
  /** Default OpenSRF's 51200. */
  maxChunkSize?: number;
  /** Default OpenSRF's 25600. */
  maxBundleSize?: number;
  logProtect?: string[];
  /** Default: errors only, on stderr. */
  logger?: Logger;
  /** Router account name (default "router"). */
  routerName?: string;
  /** Per-reply timeout of the service's own client (`ctx.call`), seconds (default 20). */
  clientTimeout?: number;
  /** Wait until the router lists the service before returning (default true). */
  waitRegistered?: boolean;
}

/** A running in-process service. */
export interface InProcessService {
  readonly service: string;
  /** The service's JID (`opensrf@<domain>/<service>_listener_<host>_<time>_<pid>`). */
  readonly jid: string;
  readonly host: ServiceHost;
  /** The client sharing the service's connection (what `ctx.call` uses). */
  readonly client: Client;
  /** Everything the service's connection sent and received. */
  readonly wire: WireTap;
  /** Unregisters from the router, closes the host (runs childExit), the client and the connection. */
  stop(): Promise<void>;
}

/** Polls the router's class list until `service` is (or is no longer) in it. */
export async function waitForRouterClass(
  client: Client,
  service: string,
  present: boolean,
  routerName = "router",
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const classes = (await client
        .request(routerName, "opensrf.router.info.class.list", [], { timeout: 2 })
        .first()) as string[];
      if (classes.includes(service) === present) return;
      last = classes;
    } catch (e) {
      last = e;
    }
    await Bun.sleep(50);
  }
  throw new Error(`router never ${present ? "listed" : "dropped"} class ${service} (last answer: ${String(last)})`);
}

/**
 * Waits until a request to `router@<domain>/<service>` reaches the service: the router
 * lists a class as soon as it registers it, but logs its connection for the class in
 * afterwards, and messages sent in between bounce.
 *
 * The probe comes from a connection of its own: a request the service sent itself would
 * come back on a thread its own client knows, and the client would take it for a reply.
 */
async function waitRoutable(
  xmpp: XmppEndpoint,
  service: string,
  routerName: string,
  logger: Logger,
  timeoutMs = 10_000,
): Promise<void> {
  const conn = await connectAs(xmpp, makeResource("", hostname()), logger);
  const client = new Client({ transport: conn, routerName, logger, timeout: 2, ownTransport: true });
  try {
    const until = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < until) {
      try {
        const echoed = await client.request(service, "opensrf.system.echo", ["ping"]).collect();
        if (echoed.length === 1 && echoed[0] === "ping") return;
        last = echoed;
      } catch (e) {
        last = e;
      }
      await Bun.sleep(50);
    }
    throw new Error(`requests to ${service} never got through the router (last: ${String(last)})`);
  } finally {
    await client.close();
  }
}

/**
 * Logs in as the service's listener, serves it in this process, registers it with the
 * router (`router@<domain>/router`) and, by default, waits until the router lists it and
 * a request through the router reaches it.
 * Runs `init` then `childInit` before registering, like a prefork parent and its drone.
 */
export async function startInProcessService(opts: InProcessServiceOptions): Promise<InProcessService> {
  const { xmpp, service, definition } = opts;
  const routerName = opts.routerName ?? "router";
  const logger = opts.logger ?? quietLogger(service);
  const conn = await connectAs(xmpp, makeResource(`${service}_listener`, hostname()), logger);
  const wire = new WireTap();
  let host: ServiceHost | undefined;
  let client: Client | undefined;
  const transport = tappedTransport(conn, wire, (s) => {
    // The client gets first look (replies to the service's own calls), as in a drone.
    if (client?.dispatch(s)) return;
    void host?.handle(s);
  });
  client = new Client({ transport, routerName, logger, timeout: opts.clientTimeout ?? 20, ownTransport: false });
  const env: ServiceEnv = { service, log: logger, client };
  try {
    host = createServiceHost({
      service,
      definition,
      transport,
      client,
      settings: {
        keepalive: opts.keepalive ?? 5,
        maxChunkSize: opts.maxChunkSize ?? OSRF_MSG_CHUNK_SIZE,
        maxBundleSize: opts.maxBundleSize ?? OSRF_MSG_BUNDLE_SIZE,
      },
      logger,
      logProtect: opts.logProtect ?? [],
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    await definition.init?.(env);
    await definition.childInit?.(env);
  } catch (e) {
    await conn.close();
    throw e;
  }

  const routerCommand = (command: "register" | "unregister") =>
    transport.send({
      to: `${routerName}@${conn.domain}/router`,
      routerClass: service,
      routerCommand: command,
      body: command === "register" ? "registering" : "unregistering",
    } satisfies OutgoingStanza);

  routerCommand("register");
  const started: InProcessService = {
    service,
    jid: conn.jid,
    host,
    client,
    wire,
    async stop() {
      try {
        routerCommand("unregister");
      } catch {
        // Connection already gone.
      }
      await host!.close(500);
      try {
        await definition.childExit?.(env);
      } catch (e) {
        logger.error(`childExit failed: ${(e as Error).message}`);
      }
      await client!.close();
      await conn.close();
    },
  };
  if (opts.waitRegistered ?? true) {
    try {
      await waitForRouterClass(client, service, true, routerName);
      await waitRoutable(xmpp, service, routerName, logger);
    } catch (e) {
      await started.stop();
      throw e;
    }
  }
  return started;
}

/** A plain caller: one XMPP login with a tapped {@link Client} on it, like srfsh. */
export interface TestCaller {
  readonly jid: string;
  readonly client: Client;
  readonly wire: WireTap;
  /** Sends a stanza as is (for exact request bodies or hand-made sessions). */
  send(stanza: OutgoingStanza): void;
  stop(): Promise<void>;
}

/**
 * Logs in as a plain client (`_<host>_<time>_<pid>`). Stanzas on threads the client does
 * not know are only recorded, so tests can drive conversations by hand with `send`.
 */
export async function startTestCaller(
  xmpp: XmppEndpoint,
  opts: { logger?: Logger; timeout?: number; routerName?: string } = {},
): Promise<TestCaller> {
  const logger = opts.logger ?? quietLogger("test-caller");
  const conn = await connectAs(xmpp, makeResource("", hostname()), logger);
  const wire = new WireTap();
  let client: Client | undefined;
  const transport = tappedTransport(conn, wire, (s) => void client?.dispatch(s));
  client = new Client({
    transport,
    routerName: opts.routerName ?? "router",
    logger,
    timeout: opts.timeout ?? 20,
    ownTransport: false,
  });
  return {
    jid: conn.jid,
    client,
    wire,
    send: (s) => transport.send(s),
    async stop() {
      await client!.close();
      await conn.close();
    },
  };
}
