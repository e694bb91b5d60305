/**
 * The drone pool: which drone gets the next message, when drones are started and retired,
 * and what happens to messages no drone can take. Pure logic over {@link DroneSpawner} and
 * {@link DroneHandle}: no processes, sockets or wall-clock timers of its own, so every rule
 * is unit-tested with fakes.
 *
 * Rules (C osrf_prefork.c 3.3 unless noted):
 * - Idle drones form a LIFO stack: the most recently used drone gets the next message
 *   (most likely still in memory). Drones holding work are in the active set.
 * - `minChildren` drones are started up front and kept (dead ones reaped and replaced).
 * - No idle drone: start one if fewer than `maxChildren` exist and hand it the message
 *   right away (the drone queues it until its XMPP login is done). At the maximum, queue
 *   the message in a FIFO backlog of `maxBacklogQueue`; when that is full, the caller gets
 *   STATUS 503 instead of silence.
 * - A drone that leaves by itself (max_requests, max_memory_mb, a crash, request_timeout)
 *   or is rolled by a HUP is replaced at once (php-fpm does the same), so a steady load
 *   never waits for a drone to log in.
 * - Spare bounds (Perl Net::Server::PreFork's settings, paced like php-fpm's `dynamic`
 *   mode, so bursts cannot make the pool thrash): while fewer than `minSpareChildren`
 *   drones are idle, start more (up to `maxChildren`), one in the first tick, then twice as
 *   many each tick the shortage lasts, up to 32 per tick. Surplus is judged on the 1 s tick
 *   only: a drone is retired when *the fewest idle drones seen over the last `spareGrace`
 *   seconds* exceeded `maxSpareChildren`, at most one per tick, never one that was busy
 *   within `spareGrace`, and never below `minChildren`. A load that comes back every few
 *   seconds keeps its drones.
 * - Drones that exit before reporting `ready` count as start-up failures: respawns are
 *   delayed exponentially up to `crashBackoffMax`, with one probe drone at a time (messages
 *   meanwhile wait in the backlog for it, rather than each starting a drone of its own).
 * - Beyond C: a drone that dies holding a request, or runs longer than `requestTimeout`
 *   (then it is killed), has its caller answered through {@link PoolHooks.fail} at once.
 * - Seed bug fixed: when handing a message to a *new* drone fails, C kills `cur_child`
 *   (another drone, or NULL); here the new drone is killed and the message re-dispatched.
 * - A drone with a slot on the free-drone board (board.ts, {@link DroneHandle.finished})
 *   is not heard from when it finishes a message: the pool reads the board whenever it
 *   places work or looks at its drones (as C reads its children's pipes only then), and
 *   asks for `available` messages ({@link DroneSpawner.wantAvailable}) only while it waits
 *   for a drone — a backlog, a drain, a rolled drone still busy — re-reading the board
 *   after raising the flag and every {@link RECHECK_MS} ms while it is up. Messages about a
 *   message the drone finished before the pool handed it the next one (they can arrive
 *   after the board told) are recognized by their count and ignored.
 */

import type { BusMessage } from "../bus/types.ts";
import { type Clock, realClock } from "../clock/clock.ts";
import type { Logger } from "../log/types.ts";
import type { RetireCause, SpawnCause } from "../metrics/types.ts";
import { crashBackoffSeconds } from "./backoff.ts";
import {
  type CallerRef,
  type DroneToListener,
  IpcMessageError,
  isStaleReport,
  parseDroneMessage,
  requestMessage,
} from "./ipc.ts";
import { requestedMethod } from "./replies.ts";
import { IdleWindow, SpareRamp, SURPLUS_RETIRES_PER_TICK } from "./spare-bounds.ts";
import type { DroneHandle, DroneSpawner, ErrorTarget, PoolFailure, PoolHooks, PoolLimits, PoolStats } from "./types.ts";

/** What {@link Pool} needs. */
export interface PoolOptions {
  /** Service name, for log lines. */
  service: string;
  spawner: DroneSpawner;
  limits: PoolLimits;
  hooks: PoolHooks;
  logger: Logger;
  /** Defaults to the real clock. */
  clock?: Clock;
  /** Maintenance tick in ms (default 1000). */
  tickMs?: number;
}

/** What became of a dispatched message. */
export type DispatchResult = "dispatched" | "queued" | "rejected";

type Place = "idle" | "active" | "retiring" | "gone";
type Mode = "running" | "draining" | "stopped";

/** One drone process and what the pool knows about it. */
class Drone {
  handle!: DroneHandle;
  place: Place = "idle";
  ready = false;
  /** The listener's message being served (until answered, or a session opened). */
  work: BusMessage | undefined;
  /** Whom to answer if the drone is lost while running a request (from `busy`). */
  caller: CallerRef | undefined;
  method: string | undefined;
  timer: unknown;
  /** We told it to stop, or killed it: its exit is expected. */
  stopRequested = false;
  /** Its caller was already answered (timeout kill): the exit only needs reaping. */
  lost = false;
  /** Detail from an `exiting` message. */
  exitNote: string | undefined;
  /** Reported init_failed and is on its way out: still counts as starting until it exits. */
  failing = false;
  served = 0;
  /** Clock time it last became idle: spawned, or done with the listener's message. */
  idleSince = 0;
  /** Messages handed to it so far (the drone's own count of them is `served`). */
  handed = 0;

  constructor(
    readonly id: number,
    readonly generation: number,
  ) {}

  get pid(): number {
    return this.handle?.pid ?? 0;
  }

  target(): ErrorTarget | undefined {
    if (this.caller) return { kind: "caller", caller: this.caller };
    if (this.work) return { kind: "stanza", stanza: this.work };
    return undefined;
  }
}

/**
 * What a drone is running: from its `busy` report, else (drones report only requests that
 * outlast one turn of their event loop) from the message it was handed.
 */
function methodOf(d: Drone): string | undefined {
  return d.method ?? (d.work ? requestedMethod(d.work) : undefined);
}

/** Why a drone is retired, for its log line. */
const RETIRE_WHY: Readonly<Record<RetireCause, string>> = {
  spare: "more idle drones than max_spare_children for spare_grace",
  reload: "reload",
  shutdown: "shutdown",
};

/** Minimum interval between repeated overload warnings, ms. */
const OVERLOAD_LOG_INTERVAL_MS = 1000;
/** Minimum interval between "queueing in the backlog" warnings, which flap under sustained load, ms. */
const QUEUE_LOG_INTERVAL_MS = 10_000;
/**
 * While the pool waits for a drone, it re-reads the board this often (ms): should a drone
 * miss the "wanted" flag, the request waits this long rather than forever.
 */
export const RECHECK_MS = 10;

/** The listener's pool of drones. See the file comment for the rules. */
export class Pool {
  private readonly idle: Drone[] = []; // stack: top is the last element
  private readonly active = new Set<Drone>();
  private readonly retiring = new Set<Drone>();
  private readonly backlog: BusMessage[] = [];
  private limits: PoolLimits;
  private readonly clock: Clock;
  private readonly log: Logger;
  private mode: Mode = "running";
  private started = false;
  private nextId = 1;
  private generation = 0;
  private crashes = 0;
  private nextSpawnAt = 0;
  private backoffTimer: unknown;
  private tickTimer: unknown;
  private drainDone: ((finished: boolean) => void) | undefined;
  private drainTimer: unknown;
  private exitWaiters: Array<() => void> = [];
  private lastOverloadLog = -Infinity;
  private lastQueueLog = -Infinity;
  private suppressedOverloads = 0;
  /** Drones that left by themselves (or were rolled) and are not replaced yet. */
  private owed = 0;
  private readonly spareRamp = new SpareRamp();
  private readonly idleWindow: IdleWindow;
  /** The "wanted" flag is up (drones with a board send `available` too). */
  private wanting = false;
  private recheckTimer: unknown;

  constructor(private readonly opts: PoolOptions) {
    this.limits = { ...opts.limits };
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger;
    this.idleWindow = new IdleWindow(this.clock.now(), 0, this.limits.spareGrace * 1000);
  }

  /** Starts `minChildren` drones and the maintenance tick. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.maintain();
    this.scheduleTick();
  }

  /**
   * Hands a message to a drone, or queues it, or (backlog full / stopped) answers the
   * caller with an error through the hooks. Never blocks.
   */
  dispatch(stanza: BusMessage): DispatchResult {
    if (this.mode === "stopped") {
      this.opts.hooks.fail({ kind: "stanza", stanza }, { kind: "shutdown" });
      return "rejected";
    }
    // Queued messages go first: a newcomer must not overtake them.
    const result = this.backlog.length === 0 && this.place(stanza) ? "dispatched" : this.enqueue(stanza);
    // One idle drone fewer may call for a spare.
    this.maintain();
    return result;
  }

  /** Replaces the limits (after a settings reload) and re-checks the pool. */
  setLimits(limits: PoolLimits): void {
    this.limits = { ...limits };
    this.idleWindow.setGrace(limits.spareGrace * 1000);
    this.maintain();
  }

  /**
   * Rolls the pool (HUP): every current drone becomes "old". Idle old drones are retired
   * now, busy ones when they finish; new drones (which load the app anew) replace them.
   * Requests in flight and in the backlog are unaffected.
   */
  roll(): void {
    this.generation++;
    for (const d of [...this.idle]) this.retire(d, "reload");
    // Busy ones are retired by release() when they report `available`; retire() counts
    // every rolled drone as owed a replacement.
    this.maintain();
  }

  /**
   * Graceful stop, step 1: keep serving (the backlog and whatever still arrives) until no
   * drone holds work and the backlog is empty, or `timeoutMs` passes. Then the backlog is
   * answered with "shutting down" and drones still busy are killed (their callers
   * answered). Resolves true when everything finished in time.
   */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.mode === "stopped") return Promise.resolve(true);
    this.mode = "draining";
    return new Promise((resolve) => {
      this.drainDone = resolve;
      this.drainTimer = this.clock.setTimeout(() => this.drainTimedOut(), timeoutMs);
      this.checkDrained();
      // Busy drones must say when they finish now.
      this.syncWanted();
    });
  }

  /**
   * Stops every drone: idle ones are told to finish (they run childExit), anything still
   * busy or queued is answered with "shutting down" and killed. Resolves when all drones
   * have exited; those still alive after `graceMs` are killed.
   */
  async stop(graceMs: number): Promise<void> {
    this.enterStopped();
    for (const d of [...this.active]) {
      this.abandon(d);
      this.discard(d);
    }
    for (const d of [...this.idle]) this.retire(d, "shutdown");
    await this.waitForExits(graceMs);
    for (const d of this.retiring) d.handle.kill("SIGKILL");
    await this.waitForExits(1000);
  }

  /** Fast stop: answer everything pending with "shutting down" and SIGKILL every drone. */
  killAll(): void {
    this.enterStopped();
    for (const d of [...this.active, ...this.idle, ...this.retiring]) {
      if (d.place === "active") this.abandon(d);
      d.stopRequested = true;
      d.handle.kill("SIGKILL");
    }
  }

  /** Counts and pids, for logs and tests. */
  stats(): PoolStats {
    if (this.collect() > 0) this.maintain();
    const pids = [...this.idle, ...this.active, ...this.retiring].map((d) => d.pid);
    return {
      idle: this.idle.length,
      active: this.active.size,
      retiring: this.retiring.size,
      backlog: this.backlog.length,
      total: this.alive(),
      pids,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Placing work

  private place(stanza: BusMessage): boolean {
    this.collect();
    for (let d = this.idle.pop(); d; d = this.idle.pop()) {
      if (this.handTo(d, stanza)) return true;
      this.log.warn(
        `drone ${d.pid} of ${this.opts.service} does not take messages (IPC channel closed); discarding it`,
      );
      this.discard(d);
      this.owed++;
    }
    // Never paced: this message is waiting for a drone.
    while (this.canSpawn()) {
      const d = this.spawnOne("demand");
      if (!d) break;
      if (this.handTo(d, stanza)) return true;
      // osrf_prefork.c kills cur_child here (the wrong drone, possibly NULL): kill the new one.
      this.log.warn(
        `new drone ${d.pid} of ${this.opts.service} does not take messages (IPC channel closed); killing it`,
      );
      this.discard(d);
      this.startFailed(d, "its IPC channel was closed before the first message");
    }
    return false;
  }

  private enqueue(stanza: BusMessage): DispatchResult {
    if (this.backlog.length < this.limits.maxBacklogQueue) {
      const now = this.clock.now();
      if (
        this.backlog.length === 0 &&
        this.alive() >= this.limits.maxChildren &&
        now - this.lastQueueLog >= QUEUE_LOG_INTERVAL_MS
      ) {
        this.lastQueueLog = now;
        this.log.warn(
          `Could not launch a new drone for ${this.opts.service} as ${this.alive()} drones were already running; ` +
            `queueing in the backlog (consider raising max_children above ${this.limits.maxChildren})`,
        );
      }
      this.backlog.push(stanza);
      return "queued";
    }
    this.logOverload();
    this.opts.hooks.fail({ kind: "stanza", stanza }, { kind: "overload" });
    return "rejected";
  }

  private logOverload(): void {
    const now = this.clock.now();
    if (now - this.lastOverloadLog < OVERLOAD_LOG_INTERVAL_MS) {
      this.suppressedOverloads++;
      return;
    }
    const more = this.suppressedOverloads ? ` (${this.suppressedOverloads} more since the last warning)` : "";
    this.log.warn(
      `${this.opts.service}: no available drones and the backlog queue is full (${this.limits.maxBacklogQueue}); ` +
        `answering 503${more}`,
    );
    this.lastOverloadLog = now;
    this.suppressedOverloads = 0;
  }

  private handTo(d: Drone, stanza: BusMessage): boolean {
    if (!d.handle.send(requestMessage(stanza))) return false;
    d.place = "active";
    this.active.add(d);
    d.handed++;
    d.work = stanza;
    d.caller = undefined;
    d.method = undefined;
    this.armTimer(d);
    return true;
  }

  /** Serves queued messages while drones are (or can be made) available. */
  private pump(): void {
    while (this.backlog.length > 0 && this.mode !== "stopped") {
      if (!this.place(this.backlog[0]!)) return;
      this.backlog.shift();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Spawning and retiring

  private alive(): number {
    return this.idle.length + this.active.size + this.retiring.size;
  }

  /**
   * Drones that count towards minChildren: not on their way out — except one that failed
   * its start-up, which is replaced only once its exit has been counted for the backoff.
   */
  private serving(): number {
    return this.idle.length + this.active.size + this.failingCount();
  }

  private starting(): number {
    let n = this.failingCount();
    for (const d of this.idle) if (!d.ready) n++;
    for (const d of this.active) if (!d.ready) n++;
    return n;
  }

  private failingCount(): number {
    let n = 0;
    for (const d of this.retiring) if (d.failing) n++;
    return n;
  }

  /**
   * Room under maxChildren and not in a crash backoff (then a wake-up is scheduled for its
   * end). While drones fail at start-up, one probe at a time — for messages too: a drone
   * started for each queued message would fail alongside the probe, each failure doubling
   * the backoff the backlog then waits out.
   */
  private canSpawn(): boolean {
    if (this.mode === "stopped" || this.alive() >= this.limits.maxChildren) return false;
    if (this.clock.now() < this.nextSpawnAt) {
      this.scheduleBackoffEnd();
      return false;
    }
    return this.crashes === 0 || this.starting() === 0;
  }

  private spawnOne(cause: SpawnCause): Drone | undefined {
    const d = new Drone(this.nextId++, this.generation);
    try {
      d.handle = this.opts.spawner.spawn(
        {
          message: (m) => this.onMessage(d, m),
          exit: (code, signal) => this.onExit(d, code, signal),
        },
        cause,
      );
    } catch (e) {
      this.startFailed(undefined, `cannot start a drone process: ${(e as Error).message}`);
      return undefined;
    }
    d.idleSince = this.clock.now();
    // Whatever the reason, one drone more is one departed drone less to replace.
    if (this.owed > 0) this.owed--;
    this.log.debug(`started drone ${d.pid} for ${this.opts.service} (${cause})`);
    return d;
  }

  private spawnIdle(cause: SpawnCause): boolean {
    const d = this.spawnOne(cause);
    if (!d) return false;
    // Below the top: a fresh drone is not yet logged in, a warm idle one is.
    this.idle.unshift(d);
    return true;
  }

  /**
   * Tells a drone to finish and exit; it leaves the pool's dispatch sets at once. A drone
   * rolled by a reload is owed a replacement; a surplus one or one stopped with the pool is not.
   */
  private retire(d: Drone, cause: RetireCause): void {
    this.unlink(d);
    d.place = "retiring";
    this.retiring.add(d);
    d.stopRequested = true;
    if (cause === "reload") this.owed++;
    this.log.debug(`retiring drone ${d.pid} of ${this.opts.service} (${RETIRE_WHY[cause]})`);
    if (!d.handle.send({ type: "shutdown", graceful: true, reason: cause })) d.handle.kill("SIGKILL");
  }

  /** Kills a drone that cannot be used; its exit is only reaped. */
  private discard(d: Drone): void {
    this.unlink(d);
    d.place = "retiring";
    this.retiring.add(d);
    d.stopRequested = true;
    d.lost = true;
    d.handle.kill("SIGKILL");
  }

  private unlink(d: Drone): void {
    const i = this.idle.indexOf(d);
    if (i >= 0) this.idle.splice(i, 1);
    this.active.delete(d);
    this.retiring.delete(d);
    this.clearTimer(d);
  }

  private startFailed(d: Drone | undefined, why: string): void {
    this.crashes++;
    const delay = crashBackoffSeconds(this.crashes, this.limits.crashBackoffMax);
    this.nextSpawnAt = this.clock.now() + delay * 1000;
    const pid = d ? ` ${d.pid}` : "";
    this.log.warn(
      `drones for ${this.opts.service} exit during start-up (last:${pid} ${why}); ` +
        (delay > 0 ? `next spawn in ${delay} s` : "respawning now"),
    );
    if (delay > 0) this.scheduleBackoffEnd();
  }

  private scheduleBackoffEnd(): void {
    if (this.backoffTimer !== undefined || this.mode === "stopped") return;
    const wait = Math.max(0, this.nextSpawnAt - this.clock.now());
    this.backoffTimer = this.clock.setTimeout(() => {
      this.backoffTimer = undefined;
      this.maintain();
    }, wait);
  }

  /**
   * Serves the backlog and starts what the pool lacks: min_children and replacements at
   * once, spares at the ramp's pace. Runs after every state change; never retires (that
   * waits for the tick, see {@link retireSurplus}).
   */
  private maintain(): void {
    if (this.mode === "stopped" || !this.started) return;
    this.collect();
    this.pump();
    // After the backlog took its drones and before spares are added: the low point.
    this.idleWindow.note(this.idle.length);
    if (this.mode === "running") {
      const l = this.limits;
      while (
        this.serving() < l.minChildren &&
        this.canSpawn() &&
        this.spawnIdle(this.owed > 0 ? "replace" : "min_children")
      );
      while (this.owed > 0 && this.canSpawn() && this.spawnIdle("replace"));
      // The ramp is asked last, so a pool at max_children or in a backoff does not speed it up.
      while (
        this.idle.length < l.minSpareChildren &&
        this.canSpawn() &&
        this.spareRamp.take() &&
        this.spawnIdle("spare")
      );
    } else {
      this.owed = 0;
    }
    this.checkDrained();
    this.syncWanted();
  }

  // -------------------------------------------------------------------------------------------
  // The free-drone board

  /** The drone has finished every message handed to it, by the board (false without one). */
  private finishedAll(d: Drone): boolean {
    const n = d.handle.finished?.();
    return n !== undefined && n >= d.handed;
  }

  /** {@link isStaleReport}, for a drone on the board. */
  private stale(d: Drone, unit: number | undefined): boolean {
    return d.handle.finished?.() !== undefined && isStaleReport(unit, d.handed);
  }

  /** Releases the active drones the board shows done with their work; how many. */
  private collect(): number {
    let n = 0;
    for (const d of this.active) {
      if (!this.finishedAll(d)) continue;
      d.served = d.handed;
      this.release(d);
      n++;
    }
    return n;
  }

  /** Waiting for a drone to come free: then drones must say so at once. */
  private needsAvailable(): boolean {
    if (this.mode === "stopped") return false;
    if (this.backlog.length > 0 || this.drainDone !== undefined) return true;
    for (const d of this.active) if (d.generation < this.generation) return true;
    return false;
  }

  /** Raises or lowers the "wanted" flag to match {@link needsAvailable}. */
  private syncWanted(): void {
    const spawner = this.opts.spawner;
    if (!spawner.wantAvailable) return;
    const want = this.needsAvailable();
    if (want === this.wanting) return;
    this.wanting = want;
    spawner.wantAvailable(want);
    if (!want) {
      this.clearRecheck();
      return;
    }
    this.scheduleRecheck();
    // After the flag is up: a drone that finished before it could see it has told the board.
    this.maintain();
  }

  private scheduleRecheck(): void {
    this.recheckTimer = this.clock.setTimeout(() => {
      this.recheckTimer = undefined;
      if (!this.wanting) return;
      this.scheduleRecheck();
      this.maintain();
    }, RECHECK_MS);
  }

  private clearRecheck(): void {
    if (this.recheckTimer !== undefined) this.clock.clearTimeout(this.recheckTimer);
    this.recheckTimer = undefined;
  }

  /**
   * max_spare_children, on the tick: retires at most {@link SURPLUS_RETIRES_PER_TICK}
   * least recently used idle drones while even the fewest idle over the last `spareGrace`
   * seconds exceeded max_spare_children, never one busy within that time, never below
   * min_children.
   */
  private retireSurplus(now: number): void {
    const l = this.limits;
    if (this.mode !== "running" || l.maxSpareChildren === 0) return;
    const low = this.idleWindow.min(now);
    if (low === undefined) return;
    const graceMs = l.spareGrace * 1000;
    let n = Math.min(low - l.maxSpareChildren, this.serving() - l.minChildren, SURPLUS_RETIRES_PER_TICK);
    for (; n > 0; n--) {
      // Bottom of the stack first: the drones the load has left alone longest.
      const d = this.idle.find((x) => now - x.idleSince >= graceMs);
      if (!d) return;
      this.retire(d, "spare");
      this.idleWindow.retired();
    }
  }

  private scheduleTick(): void {
    this.tickTimer = this.clock.setTimeout(() => {
      this.tick();
      if (this.mode !== "stopped") this.scheduleTick();
    }, this.opts.tickMs ?? 1000);
  }

  private tick(): void {
    const now = this.clock.now();
    this.idleWindow.close(now, this.idle.length);
    this.spareRamp.tick();
    this.retireSurplus(now);
    this.maintain();
  }

  // -------------------------------------------------------------------------------------------
  // Drone events

  private onMessage(d: Drone, raw: unknown): void {
    let msg: DroneToListener;
    try {
      msg = parseDroneMessage(raw);
    } catch (e) {
      if (!(e instanceof IpcMessageError)) throw e;
      this.log.warn(`drone ${d.pid} of ${this.opts.service}: ${e.message}`);
      return;
    }
    if (d.place === "gone" || d.lost) return;
    switch (msg.type) {
      case "ready":
        d.ready = true;
        if (this.crashes > 0) this.log.info(`a drone for ${this.opts.service} started fine; start-up backoff cleared`);
        this.crashes = 0;
        this.nextSpawnAt = 0;
        this.log.debug(`drone ${d.pid} of ${this.opts.service} ready as ${msg.address}`);
        break;
      case "busy":
        if (this.stale(d, msg.unit)) return;
        d.method = msg.method;
        if (msg.caller) d.caller = msg.caller;
        if (d.place === "active") this.armTimer(d);
        return;
      case "waiting":
        if (this.stale(d, msg.unit)) return;
        // Session open, nothing running: nobody to answer if it dies now, no time limit.
        d.work = undefined;
        d.caller = undefined;
        d.method = undefined;
        this.clearTimer(d);
        return;
      case "available":
        if (this.stale(d, msg.served)) return;
        d.served = msg.served;
        this.release(d);
        break;
      case "report":
        return;
      case "exiting":
        d.exitNote = `${msg.reason}${msg.detail ? `: ${msg.detail}` : ""}`;
        // Sent instead of `available`: the work it held is done. After init_failed it never
        // ran what it was handed: onExit answers that caller and counts the failure.
        if (msg.reason === "init_failed") {
          d.failing = true;
        } else {
          d.stopRequested = true;
          // Unless it was handed another message it will not run: its exit answers that caller.
          if (!this.stale(d, msg.served)) {
            d.work = undefined;
            d.caller = undefined;
            d.method = undefined;
          }
        }
        if (msg.reason === "memory") this.log.info(`drone ${d.pid} of ${this.opts.service} retires: ${d.exitNote}`);
        else
          this.log.debug(`drone ${d.pid} of ${this.opts.service} exiting after ${msg.served} requests (${d.exitNote})`);
        if (d.place !== "retiring") {
          this.unlink(d);
          d.place = "retiring";
          this.retiring.add(d);
          // Leaving by itself (max_requests, memory, a SIGTERM from outside): replace it now.
          if (!d.failing) this.owed++;
        }
        break;
    }
    this.maintain();
  }

  /** The drone finished the listener's last message. */
  private release(d: Drone): void {
    if (d.place !== "active") return;
    d.work = undefined;
    d.caller = undefined;
    d.method = undefined;
    this.unlink(d);
    if (this.mode === "stopped" || d.generation < this.generation) {
      this.retire(d, this.mode === "stopped" ? "shutdown" : "reload");
      return;
    }
    d.place = "idle";
    d.idleSince = this.clock.now();
    this.idle.push(d);
  }

  private onExit(d: Drone, code: number | null, signal: string | null): void {
    if (d.place === "gone") return;
    // Finished on the board before it died: its caller has the answer.
    if (d.place === "active" && this.finishedAll(d)) {
      d.work = undefined;
      d.caller = undefined;
      d.method = undefined;
    }
    const target = d.lost ? undefined : d.target();
    const wasStopping = d.stopRequested;
    this.unlink(d);
    d.place = "gone";
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (target) {
      const method = methodOf(d);
      this.log.warn(
        `drone ${d.pid} of ${this.opts.service} died (${how}) while running ${method ?? "a request"}; answering its caller`,
      );
      const failure: PoolFailure = { kind: "died", pid: d.pid, code, signal, starting: !d.ready };
      if (method !== undefined) failure.method = method;
      this.opts.hooks.fail(target, failure);
    }
    if (!d.ready && !d.lost && !wasStopping && this.mode === "running") {
      this.startFailed(d, `${how}${d.exitNote ? `: ${d.exitNote}` : ""}`);
    } else if (!wasStopping && !target && this.mode !== "stopped") {
      this.log.warn(`drone ${d.pid} of ${this.opts.service} exited unexpectedly (${how}); replacing it`);
    }
    // A start-up failure is not replaced here: the backoff decides when to try again.
    if (!wasStopping && d.ready) this.owed++;
    this.maintain();
    if (this.alive() === 0) for (const w of this.exitWaiters.splice(0)) w();
  }

  // -------------------------------------------------------------------------------------------
  // Request time limit

  private armTimer(d: Drone): void {
    this.clearTimer(d);
    const seconds = this.limits.requestTimeout;
    if (seconds <= 0) return;
    d.timer = this.clock.setTimeout(() => this.timedOut(d, seconds), seconds * 1000);
  }

  private clearTimer(d: Drone): void {
    if (d.timer === undefined) return;
    this.clock.clearTimeout(d.timer);
    d.timer = undefined;
  }

  private timedOut(d: Drone, seconds: number): void {
    d.timer = undefined;
    if (d.place === "gone" || d.lost) return;
    if (this.finishedAll(d)) {
      this.maintain();
      return;
    }
    const target = d.target();
    const method = methodOf(d);
    this.log.warn(
      `drone ${d.pid} of ${this.opts.service} ran ${method ?? "a request"} for more than ${seconds} s (request_timeout); killing it`,
    );
    this.discard(d);
    this.owed++;
    if (target) {
      const failure: PoolFailure = { kind: "timeout", pid: d.pid, seconds };
      if (method !== undefined) failure.method = method;
      this.opts.hooks.fail(target, failure);
    }
    this.maintain();
  }

  // -------------------------------------------------------------------------------------------
  // Stopping

  private checkDrained(): void {
    if (this.mode !== "draining" || !this.drainDone) return;
    if (this.active.size > 0 || this.backlog.length > 0) return;
    this.finishDrain(true);
  }

  private drainTimedOut(): void {
    this.drainTimer = undefined;
    if (!this.drainDone) return;
    this.log.warn(
      `${this.opts.service}: shutdown timeout reached with ${this.active.size} busy drone(s) and ${this.backlog.length} queued message(s); stopping them`,
    );
    for (const stanza of this.backlog.splice(0)) this.opts.hooks.fail({ kind: "stanza", stanza }, { kind: "shutdown" });
    for (const d of [...this.active]) {
      this.abandon(d);
      this.discard(d);
    }
    this.finishDrain(false);
  }

  private finishDrain(finished: boolean): void {
    const done = this.drainDone;
    this.drainDone = undefined;
    if (this.drainTimer !== undefined) this.clock.clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    done?.(finished);
  }

  /** Answers a busy drone's caller with "shutting down"; the drone will be killed. */
  private abandon(d: Drone): void {
    const target = d.target();
    d.lost = true;
    d.work = undefined;
    d.caller = undefined;
    if (target) this.opts.hooks.fail(target, { kind: "shutdown" });
  }

  private enterStopped(): void {
    if (this.drainDone) this.finishDrain(false);
    this.mode = "stopped";
    if (this.wanting) {
      this.wanting = false;
      this.opts.spawner.wantAvailable?.(false);
    }
    this.clearRecheck();
    for (const t of [this.tickTimer, this.backoffTimer]) if (t !== undefined) this.clock.clearTimeout(t);
    this.tickTimer = undefined;
    this.backoffTimer = undefined;
    for (const stanza of this.backlog.splice(0)) this.opts.hooks.fail({ kind: "stanza", stanza }, { kind: "shutdown" });
  }

  private waitForExits(ms: number): Promise<void> {
    if (this.alive() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(done, ms);
      const self = this;
      function done(): void {
        self.clock.clearTimeout(timer);
        const i = self.exitWaiters.indexOf(done);
        if (i >= 0) self.exitWaiters.splice(i, 1);
        resolve();
      }
      this.exitWaiters.push(done);
    });
  }
}
