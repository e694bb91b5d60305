/**
 * Drone processes for real: `Bun.spawn` of this same program in its `drone` role, with an
 * IPC channel using "json" serialization: Bun frames the messages itself. For the small
 * messages of every request (a stanza, `available`) JSON costs the listener and the drone
 * less CPU than "advanced" (structured clone) — measured 15–20% less per request for both
 * (BENCHMARKS.md); for a megabyte request the two take the same time.
 */

import type { ListenerBoard } from "./board.ts";
import { SpawnError } from "./errors.ts";
import type { DroneInit, ListenerToDrone } from "./ipc.ts";
import { jitteredMaxRequests } from "./max-requests.ts";
import { droneTitle } from "./proc-title.ts";
import { droneCommand } from "./self-exec.ts";
import type { DroneEvents, DroneHandle, DroneSpawner } from "./types.ts";

/** What {@link BunDroneSpawner} needs. */
export interface BunSpawnerOptions {
  /** Sent to every new drone; `maxRequests` is the configured value, jitter is applied per drone. */
  init: DroneInit;
  /** `max_requests_jitter`: fraction of max_requests each drone may lose. */
  jitter: number;
  /** Defaults to {@link droneCommand}. */
  command?: string[];
  /**
   * Extra environment (the JIT settings of `drone_jit`, tests); the listener's own
   * environment is inherited.
   */
  env?: Record<string, string>;
  /**
   * The free-drone board: each drone gets a slot while there are any and publishes its
   * finished messages there (board.ts). Without one drones report every message by IPC.
   */
  board?: ListenerBoard;
}

/** Spawns drones as child processes of the listener. */
export class BunDroneSpawner implements DroneSpawner {
  private init: DroneInit;
  private jitter: number;
  private env: Record<string, string>;
  private readonly command: string[];
  private readonly board: ListenerBoard | undefined;

  constructor(opts: BunSpawnerOptions) {
    this.board = opts.board;
    this.init = opts.init;
    this.jitter = opts.jitter;
    this.env = opts.env ?? {};
    this.command = opts.command ?? droneCommand();
  }

  /** Settings for drones started from now on (HUP); `env` replaces the extra environment when given. */
  update(init: DroneInit, jitter: number, env?: Record<string, string>): void {
    this.init = init;
    this.jitter = jitter;
    if (env) this.env = env;
  }

  wantAvailable(on: boolean): void {
    this.board?.want(on);
  }

  spawn(events: DroneEvents): DroneHandle {
    const init: DroneInit = { ...this.init, maxRequests: jitteredMaxRequests(this.init.maxRequests, this.jitter) };
    const board = this.board;
    const slot = board?.take();
    if (board && slot !== undefined) init.board = { path: board.path, slot };
    // The slot is given back once the process is gone (after the pool read it one last time).
    const giveBack = () => {
      if (board && slot !== undefined) board.give(slot);
    };
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn({
        cmd: this.command,
        argv0: droneTitle(init.service),
        stdin: "ignore",
        // Inherited, never piped: nobody would read a pipe, and a full one blocks the drone.
        stdout: "inherit",
        stderr: "inherit",
        env: { ...process.env, ...this.env },
        serialization: "json",
        ipc: (msg) => events.message(msg),
        onExit: (_p, code, signal) => {
          events.exit(code, signal === null ? null : String(signal));
          giveBack();
        },
      });
    } catch (e) {
      giveBack();
      throw new SpawnError(`cannot start ${this.command.join(" ")}: ${(e as Error).message}`, {
        service: init.service,
      });
    }
    const handle: DroneHandle = {
      pid: proc.pid,
      send(msg: ListenerToDrone): boolean {
        try {
          proc.send(msg);
          return true;
        } catch {
          return false;
        }
      },
      kill(signal: NodeJS.Signals): void {
        try {
          proc.kill(signal);
        } catch {
          // Already gone.
        }
      },
    };
    if (board && slot !== undefined) {
      handle.finished = () => board.finished(slot);
      handle.requestsServed = () => board.requests(slot);
    }
    if (!handle.send({ type: "init", init })) {
      handle.kill("SIGKILL");
      throw new SpawnError(`drone ${proc.pid} closed its IPC channel before its init message`, {
        service: init.service,
      });
    }
    return handle;
  }
}
