/**
 * The OpenSRF router on the Redis bus (OpenSRF main's `opensrf_router`): it pops its queue
 * `opensrf:router:<name>:<domain>`, keeps the registration table, forwards each request
 * unchanged to a listener's service queue, answers the `router` pseudo-service itself and
 * unknown services with C's one-message 404.
 *
 * Beyond C, which always forwards to the first registered instance:
 *
 * - **Spreading.** Requests go round robin over the class's queues (one per listener account
 *   and domain; listeners sharing a queue balance by themselves, whoever pops first).
 * - **Fail-over.** Redis cannot tell the router that a listener is gone, and a listener
 *   killed with -9 never unregisters. But every RPUSH answers with the list's length, and
 *   the router is the only writer of a service queue: after a push that leaves n elements,
 *   exactly its last n pushes can still be there, and a length lower than the previous one
 *   means pops. So the router knows, at no cost, the oldest message that may still be
 *   unread. When that one is `stall_timeout` old with no pop seen, the router LPOPs the
 *   head (its ACL allows it): if it gets that very message back, nobody read it for that
 *   long — the queue is stalled: everything in it is moved to the other queues, and new
 *   requests go there. A stalled queue gets one probe request at growing intervals (and
 *   is healthy again as soon as a pop is seen or a listener registers for it); with no
 *   healthy queue left, requests still go to the stalled ones, where a listener that comes
 *   back finds them. Callers of a dead listener wait `stall_timeout` longer; none is lost.
 *   (Why not a heartbeat: C and Perl listeners register once and never again, and our own
 *   re-registration every 30 s would fail over in a minute or more, not seconds.)
 */

import type { BusAddresses, BusMessage, OutgoingBusMessage } from "../bus/types.ts";
import { type Clock, realClock } from "../clock/clock.ts";
import type { RouterConfig } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import { encodeBody } from "../protocol/codec.ts";
import { status } from "../protocol/messages.ts";
import { StatusCode } from "../protocol/status.ts";
import { parseBusAddress, serviceQueue } from "../redis/addresses.ts";
import { decodeEnvelope, EnvelopeError } from "../redis/envelope.ts";
import { routerApiReplies } from "./api.ts";
import { QueueTable, type QueueTarget } from "./queue-table.ts";

/** What the router needs of its Redis connection (`RedisConnection` has it all). */
export interface QueueRouterBus {
  readonly address: string;
  readonly addresses: BusAddresses;
  /** Replies (404, router API) from our own address. */
  send(message: OutgoingBusMessage): void;
  /** Pops `key` in a loop; each element decoded (body left "") and as it was. */
  readQueue(key: string, sink: (message: BusMessage, raw: string) => void, opts?: { withBody?: boolean }): void;
  /** RPUSHes `raw` to `queue`; resolves with the list's length after it (undefined: unknown). */
  pushRaw(queue: string, raw: string, xid?: string): Promise<number | undefined>;
  /** LPOPs one message of `queue`; undefined when empty. */
  take(queue: string): Promise<{ message: BusMessage; raw: string } | undefined>;
  onMessage(handler: (message: BusMessage) => void): void;
  onOnline(handler: (reconnected: boolean) => void): void;
  close(): Promise<void>;
}

/** What a {@link QueueRouter} is built from. */
export interface QueueRouterOptions {
  config: RouterConfig;
  logger: Logger;
  bus: QueueRouterBus;
  clock?: Clock;
}

/** Longest wait between two probes of a stalled queue. */
const MAX_PROBE_BACKOFF_MS = 5 * 60_000;

/** The router of one domain on Redis. */
export class QueueRouter {
  readonly table = new QueueTable();
  /** `opensrf:router:<name>:<domain>`: registrations and first messages arrive here. */
  readonly queue: string;
  private readonly log: Logger;
  private readonly bus: QueueRouterBus;
  private readonly clock: Clock;
  private readonly stallMs: number;
  private readonly trustedServers: Set<string>;
  private readonly trustedClients: Set<string>;
  private stopped = false;
  /** Round-robin cursor of messages taken back from stalled queues. */
  private moved = 0;

  constructor(opts: QueueRouterOptions) {
    this.log = opts.logger;
    this.bus = opts.bus;
    this.clock = opts.clock ?? realClock;
    this.stallMs = opts.config.stallTimeout * 1000;
    this.trustedServers = new Set(opts.config.trustedServers);
    this.trustedClients = new Set(opts.config.trustedClients);
    // C's router queue carries its account name: opensrf:router:<username>:<domain>.
    this.queue = opts.bus.addresses.router(opts.config.transport.username, opts.config.transport.server);
  }

  /** The router's own address (replies come from it). */
  get address(): string {
    return this.bus.address;
  }

  /** Starts popping the router queue. */
  start(): void {
    this.bus.onMessage((m) =>
      this.log.debug(`ignoring a message to the router's own address from ${m.from} (thread ${m.thread})`, m.xid),
    );
    this.bus.onOnline((reconnected) => {
      if (!reconnected) return;
      // A Redis restart empties every list: what we knew of the queues is void.
      for (const c of this.table.classNames()) for (const t of this.table.targets(c)) this.forget(t);
      this.log.info("router reconnected to Redis; keeping its registrations");
    });
    this.bus.readQueue(this.queue, (m, raw) => this.onMessage(m, raw), { withBody: false });
    this.log.info(`router online as ${this.bus.address}, reading ${this.queue}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.table.classNames()) for (const t of this.table.targets(c)) this.clearCheck(t);
    await this.bus.close();
  }

  private onMessage(m: BusMessage, raw: string): void {
    const to = parseBusAddress(m.to);
    if (!to) {
      this.log.error(
        `message from ${m.from} has ${m.to ? `an unexpected recipient ${m.to}` : "no recipient"}; dropping it`,
        m.xid,
      );
      return;
    }
    if (to.purpose === "router") this.onCommand(m);
    else if (to.purpose === "service" && to.remainder) this.route(m, raw, to.remainder);
    else this.log.error(`unexpected recipient ${m.to} from ${m.from}; dropping it`, m.xid);
  }

  // ------------------------------------------------------------------------------------------
  // registration

  private onCommand(m: BusMessage): void {
    const domain = this.bus.addresses.domainOf(m.from);
    if (!this.trustedServers.has(domain)) {
      this.log.error(`Sending domain is not allowed on this router: ${m.from}`, m.xid);
      return;
    }
    if (!m.routerCommand || !m.routerClass) {
      this.log.error(`message from ${m.from} to ${m.to} has no router_command/router_class; dropping it`, m.xid);
      return;
    }
    if (m.routerCommand === "register") this.register(m.routerClass, m.from);
    else if (m.routerCommand === "unregister") this.unregister(m.routerClass, m.from);
    else
      this.log.warn(
        `unknown router_command "${m.routerCommand}" from ${m.from}; expected register or unregister`,
        m.xid,
      );
  }

  private register(className: string, sender: string): void {
    const a = parseBusAddress(sender);
    if (a?.purpose !== "client") {
      this.log.error(`cannot register ${className} for ${sender}: not a client address`);
      return;
    }
    const queue = serviceQueue(a.username, a.domain, className);
    const { result, target } = this.table.register(className, sender, queue);
    if (result === "already-registered") {
      this.log.debug(`Registering class ${className}: ${sender} is already registered`);
    } else {
      this.log.info(`Registering class ${className}: adding ${sender} (queue ${queue})`);
    }
    if (target.stalled) {
      // A listener that registers reads its queue: take it at its word.
      this.log.info(`queue ${queue} of ${className}: ${sender} registered; taking requests again`);
      this.healthy(target);
    }
    if (result === "new-queue") {
      // Somewhere to put what waits in queues judged stalled, or left unread with nowhere to go.
      for (const t of this.table.targets(className)) {
        if (t === target) continue;
        if (t.stalled) void this.drain(t);
        else if (t.pending.length > 0 && this.clock.now() - t.pending[0]!.at >= this.stallMs) void this.check(t);
      }
    }
  }

  private unregister(className: string, sender: string): void {
    const gone = this.table.unregister(className, sender);
    if (!gone) {
      this.log.debug(`Unregistering ${sender} from class ${className}: not registered`);
      return;
    }
    this.log.info(`Unregistering ${sender} from class ${className}`);
    if (!gone.queueGone) return;
    this.clearCheck(gone.target);
    // The last listener of that queue has left; what the router forwarded there just before
    // it read the unregister goes to the others (the leaving listener may take some first).
    if (this.table.targets(className).some((t) => !t.stalled)) void this.drain(gone.target);
  }

  // ------------------------------------------------------------------------------------------
  // forwarding

  private route(m: BusMessage, raw: string, service: string): void {
    const domain = this.bus.addresses.domainOf(m.from);
    if (!this.trustedClients.has(domain)) {
      this.log.error(`Sending domain is not allowed to route: ${m.from}`, m.xid);
      return;
    }
    if (service === "router") {
      this.answerApi(m, raw);
      return;
    }
    const target = this.table.pick(service, this.clock.now(), this.stallMs, MAX_PROBE_BACKOFF_MS);
    if (!target) {
      this.log.error(`Service ${service} is not registered on this router (${this.queue})`, m.xid);
      // C's exact reply: one STATUS, threadTrace 1 whatever the request's, no 205.
      const body = encodeBody([status(1, "osrfServiceException", StatusCode.NOTFOUND, "Service Not Found")]);
      this.bus.send({ to: m.from, thread: m.thread, body, xid: m.xid });
      return;
    }
    if (target.stalled) this.log.debug(`routing a probe from ${m.from} to stalled queue ${target.queue}`, m.xid);
    else this.log.debug(`routing message from ${m.from} to ${target.queue}`, m.xid);
    this.forward(target, raw, m.xid);
  }

  /** Pushes `raw` to `target`'s queue and learns from the length Redis answers with. */
  private forward(target: QueueTarget, raw: string, xid: string): void {
    target.count++;
    const at = this.clock.now();
    this.bus.pushRaw(target.queue, raw, xid).then(
      (n) => this.observe(target, { raw, at }, n),
      (e: Error) => this.log.error(`message for ${target.queue} not delivered: ${e.message}`, xid),
    );
  }

  private answerApi(m: BusMessage, raw: string): void {
    let body: string;
    try {
      body = decodeEnvelope(raw).body;
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      this.log.warn(`bad router API request from ${m.from}: ${e.reason}`, m.xid);
      return;
    }
    for (const reply of routerApiReplies(this.table, body, m.from, this.log, m.xid)) {
      this.bus.send({ to: m.from, thread: m.thread, body: reply, xid: m.xid });
    }
  }

  // ------------------------------------------------------------------------------------------
  // stall detection (see the module comment)

  /** A push to `t` left `n` elements in its list. */
  private observe(t: QueueTarget, pushed: { raw: string; at: number }, n: number | undefined): void {
    if (n === undefined) {
      // Cannot tell what is in the list any more: judge afresh from the next push.
      this.forget(t);
      return;
    }
    const popped = n <= t.length;
    t.length = n;
    t.pending.push(pushed);
    // Only the last n pushes can still be there (more, if someone else pushed too: then the
    // head is not ours and never judged).
    if (t.pending.length > n) t.pending.splice(0, t.pending.length - n);
    if (popped) {
      t.idleWarned = false;
      if (t.stalled) {
        this.log.info(`queue ${t.queue} of ${t.className} is read again; taking requests again`);
        this.healthy(t);
      }
    }
    this.scheduleCheck(t);
  }

  private scheduleCheck(t: QueueTarget): void {
    if (t.timer !== undefined || t.pending.length === 0 || this.stopped) return;
    const due = t.pending[0]!.at + this.stallMs;
    t.timer = this.clock.setTimeout(
      () => {
        t.timer = undefined;
        void this.check(t);
      },
      Math.max(0, due - this.clock.now()),
    );
  }

  private clearCheck(t: QueueTarget): void {
    if (t.timer !== undefined) this.clock.clearTimeout(t.timer);
    t.timer = undefined;
  }

  /** The oldest message that may still be in `t` is `stall_timeout` old: was it read? */
  private async check(t: QueueTarget): Promise<void> {
    const head = t.pending[0];
    if (!head || this.stopped || !this.table.has(t)) return;
    if (this.clock.now() - head.at < this.stallMs) {
      this.scheduleCheck(t);
      return;
    }
    if (this.table.others(t).length === 0) {
      // Nowhere else to send it, so no LPOP to find out (it could only be pushed back, behind
      // newer ones): the queue stays in the rotation (judging it stalled could only send
      // requests to one known to be worse) and is judged again at its next push, or when
      // another instance registers. Whether it was read is unknown: a debug line only.
      if (!t.idleWarned) {
        t.idleWarned = true;
        this.log.debug(
          `queue ${t.queue} of ${t.className}: no pop seen for ${this.stallMs / 1000} s and no other instance to fail over to`,
        );
      }
      return;
    }
    let taken: { raw: string } | undefined;
    try {
      taken = await this.bus.take(t.queue);
    } catch (e) {
      this.log.error(`cannot check queue ${t.queue}: ${(e as Error).message}`);
      this.scheduleLater(t);
      return;
    }
    if (!taken) {
      // Empty: a listener took everything.
      if (t.stalled) {
        this.log.info(`queue ${t.queue} of ${t.className} is read again; taking requests again`);
        this.healthy(t);
      }
      t.pending = [];
      t.length = 0;
      return;
    }
    t.length = Math.max(0, t.length - 1);
    const i = t.pending.findIndex((p) => p.raw === taken.raw);
    const stale = i === 0;
    t.pending.splice(0, i + 1); // i = -1 (not ours): nothing known is removed
    this.forwardElsewhere(t, taken.raw);
    if (!stale) {
      // Others were taken before it: the listener reads, just behind.
      this.scheduleCheck(t);
      return;
    }
    if (!t.stalled) {
      this.log.warn(
        `queue ${t.queue} of ${t.className}: a message waited ${this.stallMs / 1000} s unread; its listener is gone (or stuck): moving its queue to the other instances`,
      );
      t.stalled = true;
      t.probeBackoffMs = 0;
      t.probeAt = this.clock.now() + this.stallMs;
    }
    await this.drain(t);
  }

  /** Moves everything in `t`'s queue to the class's healthy queues. */
  private async drain(t: QueueTarget): Promise<void> {
    this.clearCheck(t);
    let moved = 0;
    for (;;) {
      if (this.stopped || this.table.others(t).length === 0) break;
      let taken: { raw: string } | undefined;
      try {
        taken = await this.bus.take(t.queue);
      } catch (e) {
        this.log.error(`cannot take messages back from ${t.queue}: ${(e as Error).message}`);
        break;
      }
      if (!taken) break;
      this.forwardElsewhere(t, taken.raw);
      moved++;
    }
    t.pending = [];
    t.length = 0;
    if (moved > 0) this.log.info(`moved ${moved} message(s) from ${t.queue} to the other instances of ${t.className}`);
  }

  /** Forwards a message taken back from `t` to another healthy queue of its class (or back to `t`). */
  private forwardElsewhere(t: QueueTarget, raw: string): void {
    const others = this.table.others(t);
    if (others.length === 0) {
      // Nothing healthy left meanwhile: back where it was (at the end; nothing is lost).
      this.bus
        .pushRaw(t.queue, raw)
        .catch((e: Error) => this.log.error(`message for ${t.queue} not delivered: ${e.message}`));
      return;
    }
    t.count--;
    this.forward(others[this.moved++ % others.length]!, raw, "");
  }

  private scheduleLater(t: QueueTarget): void {
    if (t.timer !== undefined || this.stopped) return;
    t.timer = this.clock.setTimeout(() => {
      t.timer = undefined;
      void this.check(t);
    }, this.stallMs);
  }

  private healthy(t: QueueTarget): void {
    t.stalled = false;
    t.idleWarned = false;
    t.probeBackoffMs = 0;
    t.probeAt = 0;
  }

  /** Drops what the router believed about `t`'s list. */
  private forget(t: QueueTarget): void {
    this.clearCheck(t);
    t.pending = [];
    t.length = 0;
  }
}
