/**
 * Shapes of the listener's observability: drone states, why drones exit, the status
 * report served at `/status`, and where that endpoint listens.
 */
import type { BusKind } from "../bus/types.ts";
import type { HistogramSnapshot } from "./histogram.ts";

/** What a drone is doing, as `/status` and `osrf_prefork_drones{state}` show it. */
export type DroneState =
  /** Spawned, not yet logged in (no `ready` yet). */
  | "starting"
  /** Ready and waiting for a message from the listener. */
  | "idle"
  /** Holding work: a request, or a stateful session it is pinned to. */
  | "busy"
  /** Told to stop, killed, or leaving by itself; not exited yet. */
  | "retiring";

/** Every {@link DroneState}, in display order. */
export const DRONE_STATES: readonly DroneState[] = ["starting", "idle", "busy", "retiring"];

/** Why a drone process ended (`osrf_prefork_drone_exits_total{cause}`). */
export type ExitCause =
  /** Served its max_requests. */
  | "max_requests"
  /** Private memory above max_memory_mb. */
  | "memory"
  /** Could not load the app, log in or run childInit. */
  | "init_failed"
  /** Stopped on request: spare drones, HUP, shutdown, or a SIGTERM to the drone. */
  | "retired"
  /** Ran longer than request_timeout and was killed. */
  | "hung"
  /** Killed by a signal nobody in the pool sent (kill -9, OOM killer). */
  | "killed"
  /** Exited by itself without saying why (uncaught error, process.exit in a method). */
  | "crash";

/** Every {@link ExitCause}, so all are exported (as 0) from the start. */
export const EXIT_CAUSES: readonly ExitCause[] = [
  "max_requests",
  "memory",
  "init_failed",
  "retired",
  "hung",
  "killed",
  "crash",
];

/** Why the pool started a drone (`osrf_prefork_drone_spawns_total{cause}`). */
export type SpawnCause =
  /** Filling up to min_children (at start, and after start-up failures). */
  | "min_children"
  /** A message arrived with no idle drone (never delayed). */
  | "demand"
  /** Fewer than min_spare_children idle (paced by the spawn ramp). */
  | "spare"
  /** Replacing a drone that left by itself (max_requests, memory, crash, timeout) or was rolled by a HUP. */
  | "replace";

/** Every {@link SpawnCause}, so all are exported (as 0) from the start. */
export const SPAWN_CAUSES: readonly SpawnCause[] = ["min_children", "demand", "spare", "replace"];

/** Why the pool told a drone to stop (`osrf_prefork_drone_retires_total{cause}`). */
export type RetireCause =
  /** More idle than max_spare_children for the whole spare_grace. */
  | "spare"
  /** Rolled by a HUP (settings and code reload). */
  | "reload"
  /** The listener is stopping. */
  | "shutdown";

/** Every {@link RetireCause}. */
export const RETIRE_CAUSES: readonly RetireCause[] = ["spare", "reload", "shutdown"];

/** Callers the listener had to answer with an error, by reason (besides overload). */
export type LostReason = "died" | "timeout" | "shutdown";

/** Every {@link LostReason}. */
export const LOST_REASONS: readonly LostReason[] = ["died", "timeout", "shutdown"];

/**
 * Why a listener registered with a router again (`osrf_prefork_router_reregistrations_total{cause}`):
 * its registration bounced (the router was away), a probe found the router without it (the
 * router restarted), or its own XMPP connection came back.
 */
export type ReregistrationCause = "bounce" | "probe" | "reconnect";

/** Every {@link ReregistrationCause}. */
export const REREGISTRATION_CAUSES: readonly ReregistrationCause[] = ["bounce", "probe", "reconnect"];

/** A listener's registration with one router. */
export interface RouterRegistration {
  /** The router's JID, `router@<domain>/router`. */
  router: string;
  /** Asked to be registered, and nothing says the router lost us. */
  registered: boolean;
  reregistrations: Record<ReregistrationCause, number>;
}

/** One drone in `/status`. */
export interface DroneStatus {
  pid: number;
  state: DroneState;
  /** Epoch ms of its spawn. */
  startedAt: number;
  /** Requests it finished (stateless and in sessions). */
  requests: number;
  /** Method running now; null when none. */
  method: string | null;
  /** Milliseconds the current method has been running; null when none. */
  methodAgeMs: number | null;
  /** Resident memory in bytes (read from /proc at report time, else last reported); null when unknown. */
  rssBytes: number | null;
}

/** The listener's whole status, as `/status` serves it in JSON. */
export interface PoolStatus {
  service: string;
  /** The machine's host name (what the listener's and drones' XMPP resources carry). */
  host: string;
  /** Listener pid. */
  pid: number;
  /** ISO 8601 start time of the listener. */
  startTime: string;
  /** Seconds since the start. */
  startSince: number;
  /** Messages from the routers handed to drones (php-fpm's "accepted conn"). */
  accepted: number;
  /** Requests drones finished, all methods and statuses. */
  requests: number;
  /** Messages waiting for a drone (the backlog; php-fpm's "listen queue"). */
  listenQueue: number;
  /** Drones by state, and their total. */
  drones: Record<DroneState, number> & { total: number };
  /** Drones started since the listener started. */
  spawns: number;
  /** The same, by why the pool started them. */
  spawnCauses: Record<SpawnCause, number>;
  /** Drones the pool told to stop, by why (their exits count as `retired`). */
  retires: Record<RetireCause, number>;
  /** Drone exits by cause. */
  exits: Record<ExitCause, number>;
  /** Callers answered 503 because the backlog was full. */
  overloadRejections: number;
  /** The bus the listener is on. */
  bus: BusKind;
  /** Times the listener's XMPP connection came back after a loss. */
  xmppReconnects: number;
  /** The routers it registers with. */
  routers: RouterRegistration[];
  /** Times the listener's Redis connections came back after a loss. */
  redisReconnects: number;
  /** Live drones, oldest first. */
  processes: DroneStatus[];
}

/** Where a listener's status endpoint listens. */
export type StatusEndpoint =
  /** A unix socket (`--status-socket`, `status_socket`). */
  | { kind: "socket"; path: string }
  /** A TCP port on 127.0.0.1 (`--status-port`, `status_port`). */
  | { kind: "port"; port: number; host?: string };

/** What the pool metrics know about one live drone. */
export interface DroneRecord {
  /** 0 until the spawn returned. */
  pid: number;
  startedAt: number;
  ready: boolean;
  /** Holds a listener message (or the session it opened). */
  busy: boolean;
  retiring: boolean;
  requests: number;
  method: string | undefined;
  /** Epoch ms the current method started (drone clock: same host). */
  since: number | undefined;
  rssBytes: number | undefined;
  /** Cause decided before the exit (its `exiting` reason, a retire, a timeout kill). */
  cause: ExitCause | undefined;
}

/**
 * What the reports read from a listener's counters. The prefork server's PoolMetrics
 * implements it; the reports never see the pool itself.
 */
export interface PoolReadings {
  readonly service: string;
  /** Epoch ms the listener started. */
  readonly startedAt: number;
  readonly spawns: number;
  readonly spawnCauses: Readonly<Record<SpawnCause, number>>;
  readonly retires: Readonly<Record<RetireCause, number>>;
  readonly accepted: number;
  /** Requests finished, all methods. */
  readonly requests: number;
  readonly overloadRejections: number;
  /** The bus the listener is on. */
  readonly bus: BusKind;
  readonly xmppReconnects: number;
  readonly redisReconnects: number;
  readonly exits: Readonly<Record<ExitCause, number>>;
  readonly lost: Readonly<Record<LostReason, number>>;
  /** method → status code → count. */
  readonly byMethod: ReadonlyMap<string, ReadonlyMap<number, number>>;
  /** Live drones, oldest first. */
  drones(): readonly DroneRecord[];
  /** Drones by state. */
  stateCounts(): Record<DroneState, number>;
  /** The request duration histogram (seconds). */
  durations(): HistogramSnapshot;
}
