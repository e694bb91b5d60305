/**
 * Registering a listener with its routers (C `osrf_prefork_register_routers`), and telling
 * router traffic from anything else.
 *
 * Beyond C: a router that restarts forgets its table, and nothing tells the listener (the
 * listener's own XMPP stream is unaffected). So while registered, the listener
 *
 * - re-sends `register` every `register_interval` seconds (the router ignores a repeat), and
 * - watches for its registrations bouncing: while a router is down its JID does not exist and
 *   the XMPP server returns the message as an error. Then it re-sends on a short backoff
 *   (0.5 s doubling to 5 s, never above the interval) until one goes through — so a router
 *   that comes back is re-joined within seconds rather than at the next interval.
 *
 * (Re-registering after the listener's own reconnect is the listener's part.)
 */

import { type Clock, realClock } from "../clock/clock.ts";
import type { RouterTarget } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import type { Transport } from "../xmpp/transport.ts";
import type { Stanza } from "../xmpp/types.ts";

/**
 * The routers `service` registers with: every configured router whose `services` list
 * is absent or names the service (simple and complex configs alike).
 */
export function routersFor(service: string, routers: readonly RouterTarget[]): RouterTarget[] {
  return routers.filter((r) => !r.services || r.services.includes(service));
}

/** The JID registrations go to: `<router_name>@<domain>/router`. */
export function routerJid(r: RouterTarget): string {
  return `${r.name}@${r.domain}/router`;
}

/** `user@domain` of a JID, lower-cased (XMPP node and domain compare case-insensitively). */
export function bareJid(jid: string): string {
  const slash = jid.indexOf("/");
  return (slash >= 0 ? jid.slice(0, slash) : jid).toLowerCase();
}

/** Default `register_interval`, seconds. */
export const DEFAULT_REGISTER_INTERVAL = 30;
/** First re-send after a bounced registration, ms; doubles per bounce up to {@link RETRY_MAX_MS}. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;
/** A re-sent registration that has not bounced after this long went through. */
const CONFIRM_MS = 2000;

/** Options of {@link Registration}. */
export interface RegistrationOptions {
  /** Seconds between periodic re-registrations while registered; 0 = never (default 30). */
  intervalSeconds?: number;
  clock?: Clock;
}

/** A router whose registrations bounce: how often, and what is scheduled next. */
interface Outage {
  bounces: number;
  retry: unknown;
  confirm: unknown;
  since: number;
}

/**
 * Sends register/unregister to the service's routers and remembers whether the service
 * should currently be registered (so a reconnect re-registers only when it should).
 */
export class Registration {
  private readonly targets: RouterTarget[];
  private readonly routerBareJids: Set<string>;
  private wanted = false;
  private intervalMs: number;
  private readonly clock: Clock;
  private periodic: unknown;
  private readonly outages = new Map<RouterTarget, Outage>();

  constructor(
    private readonly transport: Transport,
    private readonly service: string,
    routers: readonly RouterTarget[],
    private readonly logger: Logger,
    opts: RegistrationOptions = {},
  ) {
    this.targets = routersFor(service, routers);
    this.routerBareJids = new Set(this.targets.map((r) => `${r.name}@${r.domain}`.toLowerCase()));
    this.intervalMs = Math.max(0, (opts.intervalSeconds ?? DEFAULT_REGISTER_INTERVAL) * 1000);
    this.clock = opts.clock ?? realClock;
  }

  /** Routers this service registers with. */
  get routers(): readonly RouterTarget[] {
    return this.targets;
  }

  /** True between {@link register} and {@link unregister}. */
  get registered(): boolean {
    return this.wanted;
  }

  /** Sends `register` to every router (a no-op for a router that already has us). */
  register(): void {
    this.wanted = true;
    this.send("register");
    this.schedulePeriodic();
  }

  /** Sends `unregister` to every router: they stop forwarding requests to us. */
  unregister(): void {
    this.wanted = false;
    this.stop();
    this.send("unregister");
  }

  /** A new `register_interval` (SIGHUP), in seconds; the next periodic registration is rescheduled. */
  setInterval(seconds: number): void {
    this.intervalMs = Math.max(0, seconds * 1000);
    if (this.wanted) this.schedulePeriodic();
  }

  /** Cancels the periodic and retry timers (stopping); sends nothing. */
  stop(): void {
    if (this.periodic !== undefined) this.clock.clearTimeout(this.periodic);
    this.periodic = undefined;
    for (const r of [...this.outages.keys()]) this.endOutage(r);
  }

  /** True when a message comes from one of our routers (any resource, e.g. `router@d/<service>`). */
  isRouter(from: string): boolean {
    return this.routerBareJids.has(bareJid(from));
  }

  /**
   * A non-error message from a router: it is up and forwarding to us, so any registration
   * trouble with it is over.
   */
  heard(from: string): void {
    const r = this.targetOf(from);
    if (r && this.outages.has(r)) {
      this.logger.info(`${this.service}: router ${routerJid(r)} forwards to us again`);
      this.endOutage(r);
    }
  }

  /**
   * Looks at a bounce (`type="error"`) the listener received. Returns true when it is one of
   * our registrations that did not reach a router (then a re-send is scheduled), false for
   * anything else.
   */
  onBounce(s: Stanza): boolean {
    const r = this.targetOf(s.from);
    if (!r) return false;
    const resource = s.from.includes("/") ? s.from.slice(s.from.indexOf("/") + 1) : "";
    // Our messages to a router go to its `router` resource; servers may bounce from the bare JID.
    if (resource !== "" && resource !== routerJid(r).slice(routerJid(r).indexOf("/") + 1)) return false;
    // Prosody bounces without the original content (empty command): only (un)registrations go there.
    if (s.routerCommand !== "" && s.routerCommand !== "register" && s.routerCommand !== "unregister") return false;
    if (s.routerCommand === "unregister" || !this.wanted) {
      this.logger.debug(
        `${this.service}: ${s.routerCommand || "a message"} to ${s.from} bounced; not registered, nothing to do`,
      );
      return true;
    }
    const condition = `${s.error?.type ?? "?"}/${s.error?.condition ?? "?"}`;
    let o = this.outages.get(r);
    if (!o) {
      o = { bounces: 0, retry: undefined, confirm: undefined, since: this.clock.now() };
      this.outages.set(r, o);
    }
    o.bounces++;
    if (o.confirm !== undefined) this.clock.clearTimeout(o.confirm);
    o.confirm = undefined;
    if (o.retry !== undefined) return true; // a re-send is already scheduled
    const cap = this.intervalMs > 0 ? Math.min(RETRY_MAX_MS, this.intervalMs) : RETRY_MAX_MS;
    const delay = Math.min(cap, RETRY_FIRST_MS * 2 ** (o.bounces - 1));
    const text =
      `${this.service}: registration with router ${routerJid(r)} bounced (${condition}): the router is not online; ` +
      `registering again in ${delay / 1000} s`;
    if (o.bounces === 1) this.logger.warn(text);
    else this.logger.debug(`${text} (bounce ${o.bounces})`);
    o.retry = this.clock.setTimeout(() => this.retry(r), delay);
    return true;
  }

  private retry(r: RouterTarget): void {
    const o = this.outages.get(r);
    if (!o) return;
    o.retry = undefined;
    if (!this.wanted) return;
    this.sendTo(r, "register", true);
    o.confirm = this.clock.setTimeout(() => {
      o.confirm = undefined;
      if (this.outages.get(r) !== o || o.retry !== undefined) return;
      const seconds = ((this.clock.now() - o.since) / 1000).toFixed(1);
      this.logger.info(
        `${this.service}: registered again with router ${routerJid(r)} (${o.bounces} registration(s) bounced over ${seconds} s)`,
      );
      this.outages.delete(r);
    }, CONFIRM_MS);
  }

  private endOutage(r: RouterTarget): void {
    const o = this.outages.get(r);
    if (!o) return;
    if (o.retry !== undefined) this.clock.clearTimeout(o.retry);
    if (o.confirm !== undefined) this.clock.clearTimeout(o.confirm);
    this.outages.delete(r);
  }

  private targetOf(from: string): RouterTarget | undefined {
    const bare = bareJid(from);
    return this.targets.find((r) => `${r.name}@${r.domain}`.toLowerCase() === bare);
  }

  private schedulePeriodic(): void {
    if (this.periodic !== undefined) this.clock.clearTimeout(this.periodic);
    this.periodic = undefined;
    if (this.intervalMs <= 0 || this.targets.length === 0) return;
    this.periodic = this.clock.setTimeout(() => {
      this.periodic = undefined;
      if (!this.wanted) return;
      for (const r of this.targets) this.sendTo(r, "register", true);
      this.schedulePeriodic();
    }, this.intervalMs);
  }

  private send(command: "register" | "unregister"): void {
    if (this.targets.length === 0) {
      this.logger.warn(
        `${this.service}: no router in /config/opensrf/routers lists this service; not ${command}ing anywhere`,
      );
      return;
    }
    for (const r of this.targets) this.sendTo(r, command, false);
  }

  /** `quiet`: a periodic or retried registration, logged at debug level only. */
  private sendTo(r: RouterTarget, command: "register" | "unregister", quiet: boolean): void {
    const to = routerJid(r);
    const line = `${this.service} ${command === "register" ? "registering" : "un-registering"} with router ${to}`;
    if (quiet) this.logger.debug(`${line} (again)`);
    else this.logger.info(line);
    try {
      this.transport.send({
        to,
        body: command === "register" ? "registering" : "unregistering",
        routerClass: this.service,
        routerCommand: command,
      });
    } catch (e) {
      this.logger.error(`${this.service}: cannot send ${command} to ${to}: ${(e as Error).message}`);
    }
  }
}
