/**
 * The OpenSRF router (opensrf_router's behaviour): registration per class, one XMPP connection per
 * class, round-robin forwarding, fail-over on bounces, trusted domains, info methods.
 */

import type { BusConnection, BusMessage } from "../bus/types.ts";
import type { RouterConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import { decodeBody, encodeBody } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { methodException } from "../protocol/messages.ts";
import { StatusCode } from "../protocol/status.ts";
import type { OsrfMessage } from "../protocol/types.ts";
import { jidDomain } from "../xmpp/addresses.ts";
import { completeStanza } from "../xmpp/stanza.ts";
import { routerApiReplies } from "./api.ts";
import { RecentForwards } from "./recent-forwards.ts";
import { Registry } from "./registry.ts";

/** Opens an XMPP connection as `<router user>@<domain>/<resource>`. */
export type RouterConnector = (resource: string) => Promise<BusConnection>;

export interface RouterOptions {
  config: RouterConfig;
  logger: Logger;
  connect: RouterConnector;
}

export { jidDomain };

/**
 * An OpenSRF router: keeps the class/node table, holds one XMPP connection per class,
 * forwards each message for a class to its next node (round-robin), fails over on
 * bounces, and answers the `opensrf.router.info.*` methods itself.
 */
export class OsrfRouter {
  readonly registry = new Registry();
  private main: BusConnection | undefined;
  private classConns = new Map<string, Promise<BusConnection>>();
  private sent = new RecentForwards();
  /** `class\njid` registrations waiting for their class connection to come online. */
  private pending = new Set<string>();
  private readonly log: Logger;
  private readonly trustedServers: Set<string>;
  private readonly trustedClients: Set<string>;

  constructor(private readonly opts: RouterOptions) {
    this.log = opts.logger;
    this.trustedServers = new Set(opts.config.trustedServers);
    this.trustedClients = new Set(opts.config.trustedClients);
  }

  /** The router's own JID once started. */
  get jid(): string {
    return this.main?.address ?? "";
  }

  async start(): Promise<void> {
    this.main = await this.opts.connect(this.opts.config.transport.resource);
    this.main.onMessage((s) => this.onRouterMessage(s));
    this.log.info(`router online as ${this.main.address}`);
  }

  async stop(): Promise<void> {
    const conns = [...this.classConns.values()];
    this.classConns.clear();
    await Promise.all(conns.map(async (p) => (await p.catch(() => undefined))?.close()));
    await this.main?.close();
  }

  private onRouterMessage(s: BusMessage): void {
    if (s.error) {
      this.log.debug(`ignoring bounce from ${s.from} on the router connection`, s.xid);
      return;
    }
    const domain = jidDomain(s.from);
    if (!this.trustedServers.has(domain)) {
      this.log.warn(`Received message from un-trusted server domain ${s.from}`, s.xid);
      return;
    }
    switch (s.routerCommand) {
      case "":
        this.answerAppRequest(s);
        return;
      case "register":
        if (s.routerClass) void this.register(s.routerClass, s.from);
        return;
      case "unregister":
        if (s.routerClass) void this.unregister(s.routerClass, s.from);
        return;
      default:
        this.log.warn(
          `unknown router_command "${s.routerCommand}" from ${s.from}; expected register or unregister`,
          s.xid,
        );
    }
  }

  /**
   * Like the C router, a class exists (and shows in `class.list`) only once its
   * `router@<domain>/<class>` connection is online: a caller who sees the class can reach it.
   */
  private async register(className: string, jid: string): Promise<void> {
    if (this.registry.hasNode(className, jid)) {
      // C logs every register: a listener's re-registration (SIGUSR2) shows in the log.
      this.log.info(`Registering class ${className}: node ${jid} is already registered`);
      return;
    }
    const key = `${className}\n${jid}`;
    const conn = this.classConns.get(className) ?? this.openClass(className);
    this.pending.add(key);
    const online = await conn.then(
      () => true,
      () => false,
    );
    // An unregister that arrived while we were logging in cancels this registration.
    const wanted = this.pending.delete(key);
    if (online && wanted && this.classConns.get(className) === conn) {
      if (this.registry.register(className, jid) !== "already-registered") {
        this.log.info(`Registering class ${className}: adding node ${jid}`);
      }
    }
    await this.closeIfUnused(className);
  }

  private async unregister(className: string, jid: string): Promise<void> {
    this.pending.delete(`${className}\n${jid}`);
    if (this.registry.hasNode(className, jid)) {
      this.log.info(`Unregistering ${jid} from class ${className}`);
      this.registry.unregister(className, jid);
    }
    await this.closeIfUnused(className);
  }

  private openClass(className: string): Promise<BusConnection> {
    const pending = this.opts.connect(className).then((conn) => {
      conn.onMessage((s) => this.onClassMessage(className, conn, s));
      // A listener's registration probe (src/xmpp/probe.ts) asks the class JID whether it is
      // still one of our nodes: after a restart we answer no, and it registers again at once.
      conn.answerProbes?.((from) => this.registry.hasNode(className, from));
      this.log.info(`class ${className} online as ${conn.address}`);
      return conn;
    });
    this.classConns.set(className, pending);
    pending.catch((e: Error) => {
      this.log.error(`cannot open the connection for class ${className}: ${e.message}`);
      if (this.classConns.get(className) === pending) this.classConns.delete(className);
    });
    return pending;
  }

  /** Close a class's connection once it has no node and no registration in progress. */
  private async closeIfUnused(className: string): Promise<void> {
    if (this.registry.nodeCount(className) > 0) return;
    for (const key of this.pending) if (key.startsWith(`${className}\n`)) return;
    await this.closeClass(className);
  }

  private async closeClass(className: string): Promise<void> {
    const pending = this.classConns.get(className);
    if (!pending) return;
    this.classConns.delete(className);
    this.log.info(`Removing router class ${className}`);
    const conn = await pending.catch(() => undefined);
    if (!conn) return;
    // Until the server has closed the class JID's session it still delivers callers' messages
    // to it, and a closing stream cannot carry the answer: answer through the router's own
    // connection, so those callers are told instead of waiting out their timeout.
    conn.onMessage((s) => this.onLateClassMessage(className, s));
    await conn.close();
  }

  /** A message to a class whose connection is closing: the class has no listener left. */
  private onLateClassMessage(className: string, s: BusMessage): void {
    if (s.error || !this.main || !this.trustedClients.has(jidDomain(s.from))) return;
    this.replyNoListener(this.main, s, s.from, className);
  }

  /** The 503 a caller gets when its class has no listener to forward to. */
  private replyNoListener(conn: BusConnection, s: BusMessage, caller: string, className: string): void {
    this.replyStatus(conn, s, caller, StatusCode.SERVICEUNAVAILABLE, `Service ${className} has no registered listener`);
  }

  private onClassMessage(className: string, conn: BusConnection, s: BusMessage): void {
    if (!this.trustedClients.has(jidDomain(s.from))) {
      this.log.warn(`Received client message from untrusted client domain ${jidDomain(s.from)}`, s.xid);
      return;
    }
    if (s.error) {
      this.onBounce(className, conn, s);
      return;
    }
    this.forward(className, conn, s, s.from);
  }

  /**
   * A forward bounced: drop that node and hand the message to the next one.
   * ejabberd returns the whole message in the bounce; prosody returns an empty one,
   * so the message is recovered from what we recently sent to that node.
   */
  private onBounce(className: string, conn: BusConnection, bounce: BusMessage): void {
    // Only a node we forwarded to can bounce. A type="error" message from anyone else is a
    // client's own stanza: resending its body would let it choose router_from (C ignores it too).
    if (!this.registry.hasNode(className, bounce.from) && !this.sent.hasForwardedTo(bounce.from)) {
      this.log.warn(`ignoring an error message from ${bounce.from}: not a node of ${className}`, bounce.xid);
      return;
    }
    const recovered = bounce.body ? bounce : this.sent.recover(bounce.from);
    const s = recovered && completeStanza(recovered, bounce.to);
    if (!s?.routerFrom) {
      this.log.info(
        `network error from ${bounce.from} (class ${className}) with nothing left to resend; ignoring`,
        bounce.xid,
      );
      return;
    }
    const caller = s.routerFrom;
    if (this.registry.hasNode(className, bounce.from)) {
      this.log.warn(
        `node ${bounce.from} of ${className} is unreachable (${bounce.error?.condition}); removing it`,
        s.xid,
      );
      this.registry.unregister(className, bounce.from);
    }
    if (this.registry.nodeCount(className) > 0) {
      this.forward(className, conn, s, caller);
      return;
    }
    // C answers an XMPP error here; a STATUS on the caller's thread is clearer and fails it at once.
    this.replyStatus(
      conn,
      s,
      caller,
      StatusCode.SERVICEUNAVAILABLE,
      `Service ${className} has no listener left (its last listener went away)`,
    );
    void this.closeIfUnused(className);
  }

  private forward(className: string, conn: BusConnection, s: BusMessage, caller: string): void {
    const node = this.registry.nextNode(className);
    if (!node) {
      this.replyNoListener(conn, s, caller, className);
      return;
    }
    this.log.debug(`routing message from ${caller} to ${node.jid}`, s.xid);
    const out = { to: node.jid, thread: s.thread, body: s.body, routerFrom: caller, xid: s.xid };
    this.sent.record(out);
    conn.send(out);
  }

  /** Send an osrfMethodException to the caller on each REQUEST/CONNECT's threadTrace. */
  private replyStatus(conn: BusConnection, s: BusMessage, to: string, code: number, text: string): void {
    const msgs = this.decode(s);
    const traces = msgs.filter((m) => m.type === "REQUEST" || m.type === "CONNECT").map((m) => m.threadTrace);
    if (traces.length === 0) {
      this.log.warn(`dropping message for ${to}: ${text}`, s.xid);
      return;
    }
    const body = encodeBody(traces.map((t) => methodException(t, code, text)));
    conn.send({ to, thread: s.thread, body, xid: s.xid });
  }

  private decode(s: BusMessage): OsrfMessage[] {
    try {
      return decodeBody(s.body);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.log.warn(`bad message body from ${s.from}: ${e.message}`, s.xid);
      return [];
    }
  }

  /** REQUEST/CONNECT addressed to the router itself. */
  private answerAppRequest(s: BusMessage): void {
    const main = this.main!;
    for (const body of routerApiReplies(this.registry, s.body, s.from, this.log, s.xid)) {
      main.send({ to: s.from, thread: s.thread, body, xid: s.xid });
    }
  }
}
