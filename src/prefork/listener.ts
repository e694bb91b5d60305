/**
 * The listener (C `prefork_run` and its signal handlers): one bus connection registered
 * with the routers, handing each router message to the pool. It never parses a request
 * body except to answer a caller the pool could not serve, and never waits on a drone.
 *
 * Requests reach it as the bus delivers them: on XMPP the routers forward them to its own
 * JID; on Redis it is the only reader of its service queue (`serveQueue`), where the routers
 * push them with the caller's address as `from`.
 */

import type { BusConnection, BusMessage } from "../bus/types.ts";
import type { Clock } from "../clock/clock.ts";
import type { RouterTarget } from "../config/types.ts";
import type { Logger } from "../log/types.ts";
import { hasEmptyBody } from "./ipc.ts";
import { LargeMessageRelease } from "./large-messages.ts";
import { Pool } from "./pool.ts";
import { Registration } from "./registration.ts";
import { errorReply, failureStatus } from "./replies.ts";
import type { DroneSpawner, ErrorTarget, PoolFailure, PoolLimits } from "./types.ts";

/** What {@link Listener} needs. */
export interface ListenerOptions {
  service: string;
  /** The listener's own bus connection. */
  transport: BusConnection;
  /**
   * A client sharing the connection (settings from the bus, the app's `init` hook): its
   * replies are routed to it before anything else.
   */
  client?: { dispatch(stanza: BusMessage): boolean };
  /** `/config/opensrf/routers` targets; filtered by their `services` lists. */
  routers: readonly RouterTarget[];
  spawner: DroneSpawner;
  limits: PoolLimits;
  /** Seconds a graceful stop waits for busy drones (`shutdown_timeout`). */
  shutdownTimeout: number;
  logger: Logger;
  /**
   * Re-reads settings and checks the app module (HUP). Resolves with the new limits and
   * shutdown timeout; rejects to keep the current drones.
   */
  reload?: () => Promise<{
    limits: PoolLimits;
    shutdownTimeout: number;
    registerInterval?: number;
    routerProbeInterval?: number;
  }>;
  clock?: Clock;
  /**
   * `register_interval`: seconds between periodic re-registrations with the routers (a
   * restarted router has forgotten us); 0 = never. Default 30.
   */
  registerInterval?: number;
  /**
   * `router_probe_interval`: seconds between registration probes of each router, which tell
   * a restarted router within seconds (registration.ts); 0 = never. Default 1.
   */
  routerProbeInterval?: number;
  /**
   * Milliseconds to keep serving after unregistering before a graceful stop may finish:
   * the routers may have forwarded messages just before they processed the unregister.
   * Default 500.
   */
  lingerMs?: number;
  /** Told of every caller the pool could not serve (metrics); called before the answer is sent. */
  onFailure?: (failure: PoolFailure) => void;
}

type Phase = "running" | "stopping" | "stopped";

/** Longest a graceful stop keeps taking requests from its queue (Redis) after the linger. */
const QUEUE_DRAIN_MS = 3000;

/** Runs one service's listener. */
export class Listener {
  readonly pool: Pool;
  readonly registration: Registration;
  private phase: Phase = "running";
  private shutdownTimeout: number;
  private readonly log: Logger;
  private readonly service: string;
  /** Gives back what large messages leave in this long-lived process (large-messages.ts). */
  private readonly largeMessages: LargeMessageRelease;

  constructor(private readonly opts: ListenerOptions) {
    this.service = opts.service;
    this.largeMessages = new LargeMessageRelease(opts.clock ? { clock: opts.clock } : {});
    this.log = opts.logger;
    this.shutdownTimeout = opts.shutdownTimeout;
    this.registration = new Registration(opts.transport, opts.service, opts.routers, opts.logger, {
      ...(opts.registerInterval !== undefined ? { intervalSeconds: opts.registerInterval } : {}),
      ...(opts.routerProbeInterval !== undefined ? { probeSeconds: opts.routerProbeInterval } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    this.pool = new Pool({
      service: opts.service,
      spawner: opts.spawner,
      limits: opts.limits,
      logger: opts.logger,
      hooks: { fail: (target, failure) => this.answerFailure(target, failure) },
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
  }

  /** Starts the drones, then registers with the routers (C's order). */
  start(): void {
    this.opts.transport.onMessage((s) => this.onMessage(s));
    this.opts.transport.onOnline((reconnected) => {
      // The routers dropped us with our old session; come back only if we should be there.
      if (reconnected && this.registration.registered && this.phase === "running") {
        this.log.info(`${this.service}: bus connection is back; registering with the routers again`);
        this.registration.register("reconnect");
      }
    });
    this.pool.start();
    this.registration.register();
    // Redis: what the routers queued for us (also before this) is read from here on.
    this.opts.transport.serveQueue?.(this.service);
  }

  /** SIGUSR1: stop receiving new requests from the routers (drones keep serving). */
  unregister(): void {
    this.registration.unregister();
  }

  /** SIGUSR2: receive requests again. */
  register(): void {
    if (this.phase === "running") this.registration.register();
  }

  /**
   * SIGHUP: reload settings, then roll the drones — idle ones are replaced now, busy ones
   * after they finish, and new ones load the app module anew. On a reload error the
   * current drones are kept.
   */
  async reload(): Promise<void> {
    if (this.phase !== "running") return;
    this.log.info(`${this.service}: reloading settings and replacing drones (SIGHUP)`);
    if (this.opts.reload) {
      try {
        const next = await this.opts.reload();
        this.shutdownTimeout = next.shutdownTimeout;
        this.pool.setLimits(next.limits);
        if (next.registerInterval !== undefined) this.registration.setInterval(next.registerInterval);
        if (next.routerProbeInterval !== undefined) this.registration.setProbeInterval(next.routerProbeInterval);
      } catch (e) {
        this.log.error(`${this.service}: reload failed, keeping the current drones: ${(e as Error).message}`);
        return;
      }
    }
    this.pool.roll();
  }

  /**
   * SIGTERM: unregister, keep serving what still arrives and what is queued, let busy
   * drones finish within `shutdown_timeout`, then stop the drones and close the connection.
   */
  async stopGracefully(): Promise<void> {
    if (this.phase !== "running") return;
    this.phase = "stopping";
    this.log.info(`${this.service}: graceful shutdown: unregistering and finishing current work`);
    this.registration.unregister();
    await new Promise((r) => setTimeout(r, this.opts.lingerMs ?? 500));
    // Redis: pops go on until the queue is found empty (what the routers forwarded before
    // they read the unregister), for at most QUEUE_DRAIN_MS; what the last pop took has been
    // handed to the pool when this resolves, so the drain below serves it. Anything queued
    // later waits in the queue for the next listener of this service.
    await this.opts.transport.stopServing?.(this.service, { untilEmptyMs: QUEUE_DRAIN_MS });
    const finished = await this.pool.drain(this.shutdownTimeout * 1000);
    if (finished) this.log.info(`${this.service}: all drones idle; stopping them`);
    await this.pool.stop(5000);
    this.phase = "stopped";
    this.largeMessages.stop();
    await this.opts.transport.close();
  }

  /** SIGINT/SIGQUIT: unregister, answer pending callers, kill every drone. */
  async stopNow(): Promise<void> {
    if (this.phase === "stopped") return;
    this.phase = "stopped";
    this.largeMessages.stop();
    this.log.info(`${this.service}: immediate shutdown: killing drones`);
    this.registration.unregister();
    this.pool.killAll();
    await Promise.race([this.opts.transport.close(), new Promise((r) => setTimeout(r, 1000))]);
  }

  private onMessage(s: BusMessage): void {
    if (this.opts.client?.dispatch(s)) return;
    if (s.error) {
      // A registration that found no router: the registration retries it.
      if (this.registration.onBounce(s)) return;
      // 3.3 behaviour: a bounce of something we sent; nothing to retry from here.
      const e = s.error;
      this.log.warn(
        `${this.service}: received an XMPP error (${e.type}/${e.condition}${e.text ? `: ${e.text}` : ""}) from ${s.from} on thread ${s.thread}; dropping it`,
        s.xid,
      );
      return;
    }
    if (s.fromQueue !== this.service && !this.registration.isRouter(s.from)) {
      this.log.warn(
        `${this.service}: dropping a message from ${s.from}: not one of the routers it registered with`,
        s.xid,
      );
      return;
    }
    this.registration.heard(s.from);
    if (hasEmptyBody(s)) {
      this.log.warn(
        `${this.service}: received an empty message from ${s.from}, thread ${s.thread}; dropping it`,
        s.xid,
      );
      return;
    }
    this.largeMessages.note((s.xmlBody ?? s.body).length);
    this.pool.dispatch(s);
  }

  private answerFailure(target: ErrorTarget, failure: PoolFailure): void {
    this.opts.onFailure?.(failure);
    const reply = errorReply(target, failureStatus(this.service, failure), this.log);
    if (!reply) return;
    try {
      this.opts.transport.send(reply);
    } catch (e) {
      this.log.error(`${this.service}: cannot answer ${reply.to}: ${(e as Error).message}`, reply.xid);
    }
  }
}
