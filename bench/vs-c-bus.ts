/**
 * What `bench --vs-c` does differently on each bus (bench/vs-c.ts does the rest, the same on
 * both): which real OpenSRF it measures against, how its private stack starts, the bus server
 * the CPU table names, how the relay ceiling reaches the bus, and how C's listener queues.
 *
 * - XMPP: OpenSRF 3.3.0 (the release sites run) behind a private ejabberd.
 * - Redis: OpenSRF main (the Redis-era branch, built from its tarball) behind a private
 *   redis-server with main's ACL accounts; ours runs `osrf-prefork serve --bus redis`.
 */
import type { PeerRelease } from "../devkit/opensrf/peer.ts";
import type { OpenSrfStack, OpenSrfStackOptions } from "../devkit/opensrf/stack.ts";
import type { BusKind } from "../src/bus/types.ts";
import type { RelayServer } from "./relay.ts";

/** The parts of the vs-C bench that depend on the bus. */
export interface VsCBus {
  kind: BusKind;
  /** "XMPP" or "Redis", for the report. */
  label: string;
  release: PeerRelease;
  /** The real OpenSRF measured against, for the report, e.g. "OpenSRF 3.3.0". */
  cName: string;
  /** The bus server, for the CPU table and the report: "ejabberd", "redis-server". */
  serverName: string;
  /** How the shared bus server runs, for the report's conditions line. */
  serverConditions: string;
  /** Options of the real stack particular to this bus. */
  stackOptions: Pick<OpenSrfStackOptions, "release" | "xmppErlOptions">;
  /** Extra arguments of our `osrf-prefork serve`. */
  serveArgs: string[];
  serverPid(stack: OpenSrfStack): number;
  relayServer(stack: OpenSrfStack): RelayServer;
  /**
   * C's listener takes requests off the bus even when every drone is busy and keeps them in a
   * queue of its own (3.3: osrf_prefork.c, prefork_run: client_recv(…, 1), one queued request
   * handed out per message received or per second without one). It must then be restarted
   * after windows with more callers than drones, and the report explains why. C main's
   * listener instead waits for a free drone and leaves the rest in the Redis list.
   */
  cListenerQueues: boolean;
}

/** ejabberd's schedulers must not spin: the kernel bills busy-waiting to ejabberd (see BENCHMARKS.md). */
const ERL_NO_BUSY_WAIT = "+sbwt none +sbwtdcpu none +sbwtdio none";

const XMPP: VsCBus = {
  kind: "xmpp",
  label: "XMPP",
  release: "3.3",
  cName: "OpenSRF 3.3.0",
  serverName: "ejabberd",
  serverConditions: `one ejabberd (c2s shaper none, \`${ERL_NO_BUSY_WAIT}\`)`,
  stackOptions: { release: "3.3", xmppErlOptions: ERL_NO_BUSY_WAIT },
  serveArgs: [],
  serverPid: (stack) => stack.xmpp.pid,
  relayServer: (stack) => ({ kind: "xmpp", xmpp: stack.xmpp }),
  cListenerQueues: true,
};

const REDIS: VsCBus = {
  kind: "redis",
  label: "Redis",
  release: "main",
  cName: "OpenSRF main (81831b2)",
  serverName: "redis-server",
  serverConditions: "one private redis-server (Debian's, no persistence, main's ACL accounts)",
  stackOptions: { release: "main" },
  // The stack's opensrf_core.xml is main's own, without <bus>: the flag chooses Redis.
  serveArgs: ["--bus", "redis"],
  serverPid: (stack) => stack.redis.pid,
  relayServer: (stack) => ({ kind: "redis", redis: stack.redis }),
  cListenerQueues: false,
};

/** The bus's part of the vs-C bench. */
export function vsCBus(kind: BusKind): VsCBus {
  return kind === "redis" ? REDIS : XMPP;
}
