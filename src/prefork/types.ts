/**
 * Shapes of the prefork server: the pool's view of a drone process, the clock it runs on,
 * what it reports back to the listener, and what a drone is told when it starts.
 */

import type { BusMessage } from "../bus/types.ts";
import type { PreforkSettings } from "../config/types.ts";
import type { SpawnCause } from "../metrics/types.ts";
import type { CallerRef, ListenerToDrone } from "./ipc.ts";

// ---------------------------------------------------------------------------------------------
// Pool ↔ drone processes

/** One drone process as the pool sees it. */
export interface DroneHandle {
  /** OS process id (for logs and tests). */
  readonly pid: number;
  /**
   * Queues a message on the drone's IPC channel. Returns false when the channel is gone
   * (the drone died or never started): the caller then discards the drone.
   */
  send(msg: ListenerToDrone): boolean;
  /** Sends a signal; never throws (the process may already be gone). */
  kill(signal: NodeJS.Signals): void;
  /**
   * How many of the listener's messages the drone has finished, read from the free-drone
   * board without waiting (board.ts); still readable after the drone exited. Absent or
   * undefined: no board, the drone reports each by `available`.
   */
  finished?(): number | undefined;
  /** Requests it has served, from the same board (see {@link finished}). */
  requestsServed?(): number | undefined;
}

/** Where a drone's IPC messages and its exit are reported. */
export interface DroneEvents {
  /** A message from the drone, not yet validated. */
  message(msg: unknown): void;
  /** The process ended: exit code, or the signal that killed it. */
  exit(code: number | null, signal: string | null): void;
}

/** Starts drone processes. The real one is `BunDroneSpawner`; tests use fakes. */
export interface DroneSpawner {
  /**
   * Starts one drone and sends it its `init` message.
   * @param cause Why the pool wants it (for the metrics).
   * @throws SpawnError when the process cannot be started at all.
   */
  spawn(events: DroneEvents, cause: SpawnCause): DroneHandle;
  /**
   * Asks drones with a board slot to send `available` by IPC as well (the pool waits for
   * a drone), or not. After turning it on the pool re-reads the board (board.ts).
   */
  wantAvailable?(on: boolean): void;
}

/** The settings the pool enforces (a subset of {@link PreforkSettings}; times in seconds). */
export type PoolLimits = Pick<
  PreforkSettings,
  | "minChildren"
  | "maxChildren"
  | "maxBacklogQueue"
  | "minSpareChildren"
  | "maxSpareChildren"
  | "spareGrace"
  | "requestTimeout"
  | "crashBackoffMax"
>;

// ---------------------------------------------------------------------------------------------
// Failures the listener answers for

/**
 * Whom to answer when the pool cannot finish a request: either the stanza the listener
 * received (its body is decoded only then) or a caller a drone described in `busy`.
 */
export type ErrorTarget = { kind: "stanza"; stanza: BusMessage } | { kind: "caller"; caller: CallerRef };

/** Why a request could not be served; the listener turns it into a STATUS for the caller. */
export type PoolFailure =
  /** Backlog full (C 3.3's 503). */
  | { kind: "overload" }
  /** The server is stopping and could not serve it in time. */
  | { kind: "shutdown" }
  /** The drone serving it died (killed, crashed, exited during start-up). */
  | { kind: "died"; pid: number; code: number | null; signal: string | null; method?: string; starting: boolean }
  /** The drone ran longer than `request_timeout` and was killed. */
  | { kind: "timeout"; pid: number; seconds: number; method?: string };

/** What the pool asks of its owner. */
export interface PoolHooks {
  /** Send an error status to the caller of a request the pool could not complete. */
  fail(target: ErrorTarget, failure: PoolFailure): void;
}

/** Counts for logs, status lines and tests. */
export interface PoolStats {
  /** Idle drones (dispatchable), starting ones included. */
  idle: number;
  /** Drones holding work from the listener (requests or pinned sessions). */
  active: number;
  /** Drones told to stop (or stopping by themselves) that have not exited yet. */
  retiring: number;
  /** Messages waiting for a drone. */
  backlog: number;
  /** All drone processes still alive. */
  total: number;
  /** Pids of live drones, idle stack first (top last), then active, then retiring. */
  pids: number[];
}
