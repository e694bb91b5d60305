/**
 * In-memory stand-ins for what the prefork listener, pool and registration talk to: a clock
 * that only moves when told, drones that are plain objects the test drives, a spawner that
 * keeps them (and why each was started), a listener's transport, and router stanzas. The
 * prefork unit tests (and fault-security's IPC checks) drive the real Listener, Pool and
 * Registration with them; the logger is the public RecordingLogger.
 */
import type { BusConnection } from "../../src/bus/types.ts";
import type { SpawnCause } from "../../src/metrics/types.ts";
import type { DroneToListener, ListenerToDrone } from "../../src/prefork/ipc.ts";
import { Pool } from "../../src/prefork/pool.ts";
import type { DroneEvents, DroneHandle, ErrorTarget, PoolFailure, PoolLimits } from "../../src/prefork/types.ts";
import { RecordingLogger } from "../../src/testing/doubles.ts";
import { ManualClock } from "../../src/testing/manual-clock.ts";
import { xmppAddresses } from "../../src/xmpp/addresses.ts";
import type { OutgoingStanza, Stanza } from "../../src/xmpp/types.ts";

let nextPid = 1000;

/** One fake drone: records what the pool sends it; the test makes it speak and exit. */
export class FakeDrone implements DroneHandle {
  readonly pid = nextPid++;
  sent: ListenerToDrone[] = [];
  kills: string[] = [];
  sendFails = false;
  exited = false;
  /** Called after each message the pool sent it was accepted. */
  onSent: (msg: ListenerToDrone) => void = () => {};
  /** Its counter on the free-drone board; undefined: no board (it reports by `available`). */
  board: number | undefined;
  constructor(
    readonly events: DroneEvents,
    readonly cause: SpawnCause,
  ) {}
  send(msg: ListenerToDrone): boolean {
    if (this.sendFails || this.exited) return false;
    this.sent.push(msg);
    this.onSent(msg);
    return true;
  }
  kill(signal: NodeJS.Signals): void {
    this.kills.push(signal);
  }
  finished(): number | undefined {
    return this.board;
  }
  /** Finishes its current message as a drone with a board does: the counter, no IPC. */
  finishOnBoard(): void {
    this.board = this.requests.length;
  }
  /** Threads of the stanzas handed to this drone. */
  get requests(): string[] {
    return this.sent.flatMap((m) => (m.type === "request" ? [m.stanza.thread] : []));
  }
  /** A message from the drone (also malformed ones). */
  say(msg: DroneToListener | Record<string, unknown>): void {
    this.events.message(msg);
  }
  ready(): this {
    this.say({ type: "ready", address: `opensrf@localhost/drone_${this.pid}` });
    return this;
  }
  available(served = 1): void {
    this.say({ type: "available", served, rssBytes: 1 });
  }
  exit(code: number | null = 0, signal: string | null = null): void {
    this.exited = true;
    this.events.exit(code, signal);
  }
}

/** Keeps every drone it "started", in order. */
export class FakeSpawner {
  drones: FakeDrone[] = [];
  /** Called on each new drone before it is returned (e.g. to make its send fail). */
  onSpawn: (d: FakeDrone) => void = () => {};
  failSpawn = false;
  /** Drones get a board slot (counter 0), and the pool's "wanted" flag is recorded. */
  boards = false;
  /** The "wanted" flag as the pool last set it. */
  wanted = false;
  /** Called each time the pool sets the flag (e.g. to finish a drone at that instant). */
  onWant: (on: boolean) => void = () => {};
  wantAvailable(on: boolean): void {
    this.wanted = on;
    this.onWant(on);
  }
  spawn(events: DroneEvents, cause: SpawnCause): DroneHandle {
    if (this.failSpawn) throw new Error("spawn refused");
    const d = new FakeDrone(events, cause);
    if (this.boards) d.board = 0;
    this.onSpawn(d);
    this.drones.push(d);
    return d;
  }
  get live(): FakeDrone[] {
    return this.drones.filter((d) => !d.exited);
  }
  /** Drones started for `cause`. */
  count(cause: SpawnCause): number {
    return this.drones.filter((d) => d.cause === cause).length;
  }
}

/**
 * A listener's bus connection (XMPP addresses): keeps what is sent as given (no `from` filled
 * in), the message handler and the online handlers, for the test to call.
 */
export class FakeTransport implements BusConnection {
  readonly kind = "xmpp" as const;
  readonly addresses = xmppAddresses;
  readonly address = "opensrf@localhost/svc_listener_h_1.0_1";
  readonly domain = "localhost";
  sent: OutgoingStanza[] = [];
  handler: (s: Stanza) => void = () => {};
  online: Array<(reconnected: boolean) => void> = [];
  closed = false;
  send(s: OutgoingStanza): void {
    this.sent.push(s);
  }
  onMessage(h: (s: Stanza) => void): void {
    this.handler = h;
  }
  onOnline(h: (reconnected: boolean) => void): void {
    this.online.push(h);
  }
  wireText(s: OutgoingStanza): string {
    return JSON.stringify(s);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Pool limits of a single drone: no backlog, no spares, no request timeout. */
export const ONE_DRONE_LIMITS: PoolLimits = {
  minChildren: 1,
  maxChildren: 1,
  maxBacklogQueue: 0,
  minSpareChildren: 0,
  maxSpareChildren: 0,
  spareGrace: 10,
  requestTimeout: 0,
  crashBackoffMax: 60,
};

/** A router message for the service on `thread`. */
export function stanza(
  thread: string,
  body = `[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"m","params":[]}}}}]`,
): Stanza {
  return {
    to: "opensrf@localhost/svc_listener",
    from: "router@localhost/svc",
    thread,
    body,
    routerFrom: "opensrf@localhost/client",
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    xid: `xid-${thread}`,
  };
}

/** A pool on fakes; failures it reports are collected. `boards`: drones on a free-drone board. */
export function fakePool(limits: PoolLimits, opts: { boards?: boolean } = {}) {
  const clock = new ManualClock();
  const spawner = new FakeSpawner();
  spawner.boards = opts.boards ?? false;
  const logger = new RecordingLogger();
  const failures: Array<{ target: ErrorTarget; failure: PoolFailure }> = [];
  const pool = new Pool({
    service: "svc",
    spawner,
    limits,
    hooks: { fail: (target, failure) => void failures.push({ target, failure }) },
    logger,
    clock,
  });
  return { clock, spawner, logger, failures, pool };
}
