/**
 * Registering a listener with its routers (C `osrf_prefork_register_routers`), and telling
 * router traffic from anything else. The bus says where router commands go
 * (`addresses.routerCommands`: XMPP `router@domain/router`, Redis `opensrf:router:router:domain`).
 *
 * Beyond C: a router that restarts forgets its table, and nothing tells the listener (the
 * listener's own connection is unaffected, and the C router says nothing when it logs in: no
 * presence, no message). So while registered, the listener
 *
 * - probes each router every `router_probe_interval` seconds (1 by default) with one iq to
 *   the router's class JID, `router@<domain>/<service>` (src/xmpp/probe.ts). A router holds
 *   that session exactly while it has a node of the class, so after a restart the XMPP server
 *   answers for it: no such session. Our router also answers itself whether we are a node. A
 *   router that says we are not, or whose class JID is gone, gets our registration again.
 *   The C router never answers an iq, so it cannot say "not you": after a restart the first
 *   listener of a class to re-register would bring the class JID back before the others had
 *   seen it gone. Listeners facing such a silent router therefore wait a probe interval and a
 *   half before re-registering, long enough for every listener of the class to see the gap
 *   too — all of them are back within about 2.5 intervals, none depending on a lucky timing;
 * - watches for its registrations bouncing: while a router is down its JID does not exist and
 *   the XMPP server returns the message as an error. Then it re-sends on a short backoff
 *   (0.5 s doubling to 5 s, never above the interval) until one goes through;
 * - re-sends `register` every `register_interval` seconds regardless (the router ignores a
 *   repeat): the last resort for a router that answers no probe and loses no session.
 *
 * Probes and bounces are XMPP's (the connection's optional `probe`; bounces are XMPP errors).
 * On Redis there are neither — a router's queue outlives the router, and what waits there is
 * read when it is back — and the periodic registration brings a restarted router our class.
 *
 * (Re-registering after the listener's own reconnect is the listener's part.)
 */

import type { BusConnection, BusMessage, ProbeAnswer } from "../bus/types.ts";
import { type Clock, realClock } from "../clock/clock.ts";
import type { RouterTarget } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import type { ReregistrationCause, RouterRegistration } from "../metrics/types.ts";

/**
 * The routers `service` registers with: every configured router whose `services` list
 * is absent or names the service (simple and complex configs alike).
 */
export function routersFor(service: string, routers: readonly RouterTarget[]): RouterTarget[] {
  return routers.filter((r) => !r.services || r.services.includes(service));
}

/** `user@domain` of a JID, lower-cased (XMPP node and domain compare case-insensitively). */
export function bareJid(jid: string): string {
  const slash = jid.indexOf("/");
  return (slash >= 0 ? jid.slice(0, slash) : jid).toLowerCase();
}

/** Default `register_interval`, seconds. */
export const DEFAULT_REGISTER_INTERVAL = 30;
/** Default `router_probe_interval`, seconds. */
export const DEFAULT_PROBE_INTERVAL = 1;
/**
 * How long a listener that found a silent router's class JID gone waits before registering,
 * in probe intervals: more than one, so every other listener's next probe still finds it gone.
 */
export const SILENT_ROUTER_WAIT = 1.5;
/**
 * Share of the probe interval a probe waits for its answer: less than all of it, so that a
 * silent router's unanswered probe is over before the next one is due. Otherwise that one is
 * skipped (one probe in flight per router), a listener probes every other interval, and it can
 * miss the gap a restarted silent router leaves before another listener's registration closes
 * it (seen with the C router: one listener of two stayed unregistered).
 */
export const PROBE_ANSWER_SHARE = 0.75;
/**
 * Probes answered with an error in a row, each after a registration that went through, before
 * a router is no longer probed: its class JID answers errors itself (a router of an older
 * version, say), and re-registering every interval would change nothing.
 */
export const MAX_PROBE_ERRORS = 3;
/** First re-send after a bounced registration, ms; doubles per bounce up to {@link RETRY_MAX_MS}. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;
/** A re-sent registration that has not bounced after this long went through. */
const CONFIRM_MS = 2000;

/** Options of {@link Registration}. */
export interface RegistrationOptions {
  /** Seconds between periodic re-registrations while registered; 0 = never (default 30). */
  intervalSeconds?: number;
  /** Seconds between registration probes of each router; 0 = never (default 1). */
  probeSeconds?: number;
  clock?: Clock;
}

/** What the listener knows of one router beyond its outages. */
interface RouterState {
  /** The router answered a probe at least once (ours does; the C router never). */
  answers: boolean;
  /** A probe is on its way. */
  probing: boolean;
  /** A re-registration the probe decided on, waiting (silent routers only). */
  delayed: unknown;
  /** Probes answered with an error in a row, each followed by a registration that did not bounce. */
  errors: number;
  /** Not probed any more: it answers every probe with an error though it takes our registrations. */
  probeless: boolean;
  reregistrations: Record<ReregistrationCause, number>;
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
  private probeMs: number;
  private probeTimer: unknown;
  private readonly state = new Map<RouterTarget, RouterState>();

  constructor(
    private readonly transport: BusConnection,
    private readonly service: string,
    routers: readonly RouterTarget[],
    private readonly logger: Logger,
    opts: RegistrationOptions = {},
  ) {
    this.targets = routersFor(service, routers);
    this.routerBareJids = new Set(this.targets.map((r) => `${r.name}@${r.domain}`.toLowerCase()));
    this.intervalMs = Math.max(0, (opts.intervalSeconds ?? DEFAULT_REGISTER_INTERVAL) * 1000);
    this.probeMs = Math.max(0, (opts.probeSeconds ?? DEFAULT_PROBE_INTERVAL) * 1000);
    this.clock = opts.clock ?? realClock;
    for (const r of this.targets) {
      this.state.set(r, {
        answers: false,
        probing: false,
        delayed: undefined,
        errors: 0,
        probeless: false,
        reregistrations: { bounce: 0, probe: 0, reconnect: 0 },
      });
    }
  }

  /** Routers this service registers with. */
  get routers(): readonly RouterTarget[] {
    return this.targets;
  }

  /** True between {@link register} and {@link unregister}. */
  get registered(): boolean {
    return this.wanted;
  }

  /**
   * Sends `register` to every router (a no-op for a router that already has us). `reconnect`:
   * our own XMPP connection came back (counted, per router, as a re-registration).
   */
  register(cause?: "reconnect"): void {
    this.wanted = true;
    for (const st of this.state.values()) {
      if (cause) st.reregistrations[cause]++;
      this.cancelDelayed(st);
      st.errors = 0;
      st.probeless = false;
    }
    this.send("register");
    this.schedulePeriodic();
    this.scheduleProbe();
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

  /** A new `router_probe_interval` (SIGHUP), in seconds; 0 stops probing. */
  setProbeInterval(seconds: number): void {
    this.probeMs = Math.max(0, seconds * 1000);
    if (this.wanted) this.scheduleProbe();
  }

  /** Cancels the periodic, probe and retry timers (stopping); sends nothing. */
  stop(): void {
    if (this.periodic !== undefined) this.clock.clearTimeout(this.periodic);
    this.periodic = undefined;
    if (this.probeTimer !== undefined) this.clock.clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    for (const st of this.state.values()) this.cancelDelayed(st);
    for (const r of [...this.outages.keys()]) this.endOutage(r);
  }

  /**
   * Each router as `/metrics` and `/status` show it: registered means we asked to be and
   * nothing says the router lost us (no bounce outage, no re-registration pending).
   */
  states(): RouterRegistration[] {
    return this.targets.map((r) => {
      const st = this.state.get(r)!;
      return {
        router: this.addressOf(r),
        registered: this.wanted && !this.outages.has(r) && st.delayed === undefined,
        reregistrations: { ...st.reregistrations },
      };
    });
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
    // Called for every request: with no outage there is nothing to look up.
    if (this.outages.size === 0) return;
    const r = this.targetOf(from);
    if (r && this.outages.has(r)) {
      this.logger.info(`${this.service}: router ${this.addressOf(r)} forwards to us again`);
      this.endOutage(r);
    }
  }

  /**
   * Looks at a bounce (`type="error"`) the listener received. Returns true when it is one of
   * our registrations that did not reach a router (then a re-send is scheduled), false for
   * anything else.
   */
  onBounce(s: BusMessage): boolean {
    const r = this.targetOf(s.from);
    if (!r) return false;
    const resource = s.from.includes("/") ? s.from.slice(s.from.indexOf("/") + 1) : "";
    // Our messages to a router go to its `router` resource; servers may bounce from the bare JID.
    const to = this.addressOf(r);
    if (resource !== "" && resource !== to.slice(to.indexOf("/") + 1)) return false;
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
      const st = this.state.get(r)!;
      st.reregistrations.bounce++;
      this.cancelDelayed(st);
      st.errors = 0; // the router really was away
    }
    o.bounces++;
    if (o.confirm !== undefined) this.clock.clearTimeout(o.confirm);
    o.confirm = undefined;
    if (o.retry !== undefined) return true; // a re-send is already scheduled
    const cap = this.intervalMs > 0 ? Math.min(RETRY_MAX_MS, this.intervalMs) : RETRY_MAX_MS;
    const delay = Math.min(cap, RETRY_FIRST_MS * 2 ** (o.bounces - 1));
    const text =
      `${this.service}: registration with router ${this.addressOf(r)} bounced (${condition}): the router is not online; ` +
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
        `${this.service}: registered again with router ${this.addressOf(r)} (${o.bounces} registration(s) bounced over ${seconds} s)`,
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

  private scheduleProbe(): void {
    if (this.probeTimer !== undefined) this.clock.clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    if (this.probeMs <= 0 || this.targets.length === 0 || !this.transport.probe) return;
    this.probeTimer = this.clock.setTimeout(() => {
      this.probeTimer = undefined;
      if (!this.wanted) return;
      for (const r of this.targets) this.probe(r);
      this.scheduleProbe();
    }, this.probeMs);
  }

  /** One probe of `r`, unless one is on its way or the router's trouble is already being handled. */
  private probe(r: RouterTarget): void {
    const st = this.state.get(r)!;
    if (st.probing || st.probeless || st.delayed !== undefined || this.outages.has(r)) return;
    st.probing = true;
    // Answered within most of the interval or not at all: at most one probe per router in flight.
    this.transport.probe!(this.classAddress(r), this.service, Math.floor(this.probeMs * PROBE_ANSWER_SHARE)).then(
      (answer) => {
        st.probing = false;
        this.onProbeAnswer(r, st, answer);
      },
      () => {
        st.probing = false;
      },
    );
  }

  private onProbeAnswer(r: RouterTarget, st: RouterState, answer: ProbeAnswer): void {
    if (!this.wanted || this.outages.has(r) || st.delayed !== undefined) return;
    if (answer.kind !== "unavailable") st.errors = 0;
    switch (answer.kind) {
      case "registered":
        st.answers = true;
        return;
      case "no-answer":
        return;
      case "not-registered":
        st.answers = true;
        this.reregister(r, st, "it answered that we are not one of its nodes", 0);
        return;
      case "unavailable": {
        if (++st.errors > MAX_PROBE_ERRORS) {
          st.probeless = true;
          this.logger.warn(
            `${this.service}: router ${this.addressOf(r)} answers every registration probe with an error ` +
              `(${answer.condition}) although our registrations reach it; not probing it any more ` +
              `(register_interval still applies)`,
          );
          return;
        }
        const why = `its ${this.classAddress(r)} is gone (${answer.condition}): it has no node of ${this.service}`;
        // A router that answers probes tells each listener it lost it; a silent one cannot,
        // so give the other listeners of the class time to see the gap too.
        this.reregister(r, st, why, st.answers ? 0 : this.probeMs * SILENT_ROUTER_WAIT);
        return;
      }
    }
  }

  private reregister(r: RouterTarget, st: RouterState, why: string, delayMs: number): void {
    st.reregistrations.probe++;
    const when = delayMs > 0 ? ` in ${(delayMs / 1000).toFixed(2)} s (it does not answer probes)` : "";
    this.logger.warn(
      `${this.service}: router ${this.addressOf(r)} lost our registration: ${why}; registering again${when}`,
    );
    const go = (): void => {
      st.delayed = undefined;
      if (this.wanted && !this.outages.has(r)) this.sendTo(r, "register", false);
    };
    if (delayMs <= 0) go();
    else st.delayed = this.clock.setTimeout(go, delayMs);
  }

  private cancelDelayed(st: RouterState): void {
    if (st.delayed !== undefined) this.clock.clearTimeout(st.delayed);
    st.delayed = undefined;
  }

  /** Where `register`/`unregister` for router `r` go on this bus. */
  private addressOf(r: RouterTarget): string {
    return this.transport.addresses.routerCommands(r.name, r.domain);
  }

  /** Where probes for router `r` go: its connection for our service (XMPP `router@<domain>/<service>`). */
  private classAddress(r: RouterTarget): string {
    return this.transport.addresses.service(r.name, r.domain, this.service);
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
    const to = this.addressOf(r);
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
