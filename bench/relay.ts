/**
 * The relay ceiling: bare bus clients (bench/raw-bus.ts) passing the messages one OpenSRF
 * call needs, through the same bus server — on XMPP caller → router@dom/<class> → listener,
 * on Redis caller → router's queue → service queue → listener; then (→ drone over a Unix
 * socket, one-byte "free" note back) → drone → caller — with the same message texts, and no
 * OpenSRF code. What the bus could do if our processes cost nothing.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { TEST_USERS } from "../devkit/osrf-config.ts";
import type { RedisServer } from "../devkit/redis-server.ts";
import type { XmppServer } from "../devkit/xmpp-server.ts";
import { splitResult } from "../src/protocol/chunking.ts";
import { encodeBody } from "../src/protocol/codec.ts";
import {
  complete,
  connect,
  connectOk,
  disconnect,
  type HeaderOptions,
  request,
  result,
} from "../src/protocol/messages.ts";
import { connectRawBus, type RawBusLogin, wireBody } from "./raw-bus.ts";
import type { RelayNodeConfig } from "./relay-node.ts";

const HEADER: HeaderOptions = { locale: "en-US", apiLevel: 1 };
const RELAY_CLASS = "bench.relay";

/** Params of each kind of call, shared with the OpenSRF runs so the stanzas match. */
export const ECHO_PARAMS = ["hello", 42];
export const ADD_PARAMS = [2, 2];
/** Size of the large result (examples/stream.ts `big`). */
export const BIG_BYTES = 1024 * 1024;
/**
 * Echo of a string (vs-c): the request carries it and the result brings it back, in partials
 * when it is above the chunk size. 60 KB is the largest that C 3.3's prefork takes reliably:
 * its drone reads a request from the listener's pipe until the pipe is momentarily empty, so a
 * request above the pipe's 64 KB is often cut short (and never answered).
 */
export const MID_ECHO_BYTES = 60 * 1024;
export const MID_ECHO_PARAMS = ["x".repeat(MID_ECHO_BYTES)];
/** A 1 MB echo: 1 MB out, 1 MB back in partials. */
export const BIG_ECHO_PARAMS = ["x".repeat(BIG_BYTES)];
/** Requests inside one stateful session. */
export const SESSION_REQUESTS = 10;

/** Reply bodies (in the bus's form) a drone sends for each kind of call. */
function replyBodies(bus: RawBusLogin["kind"], chunkSize: number): Record<string, string[]> {
  const esc = (msgs: Parameters<typeof encodeBody>[0]) => wireBody(bus, encodeBody(msgs));
  const chunked = (text: string) => [
    ...(splitResult(1, text, HEADER, chunkSize) ?? [result(1, text, HEADER)]).map((m) => esc([m])),
    esc([complete(1, HEADER)]),
  ];
  const big = chunked("x".repeat(BIG_BYTES));
  return {
    echo: [esc([result(1, ECHO_PARAMS[0]!, HEADER), result(1, ECHO_PARAMS[1]!, HEADER), complete(1, HEADER)])],
    big,
    // Echoes: the same result stanzas as a drone sends for the string, after a request holding it.
    bigecho: big,
    midecho: chunked(MID_ECHO_PARAMS[0]!),
    connect: [esc([connectOk(0, HEADER)])],
    sreq: [esc([result(1, ECHO_PARAMS[0]!, HEADER), result(1, ECHO_PARAMS[1]!, HEADER), complete(1, HEADER)])],
    sdisc: [],
  };
}

/** The running relay processes and the caller's calls through them. */
export interface Relay {
  /** One echo-sized round trip. */
  echo(): Promise<void>;
  /** A 1 MB result in as many stanzas as the drone would send. */
  big(): Promise<void>;
  /** Echo of {@link MID_ECHO_BYTES}: the request through the router holds them, the result brings them back. */
  midEcho(): Promise<void>;
  /** Echo of 1 MB: a 1 MB request through the router, the 1 MB result back as `big`'s. */
  bigEcho(): Promise<void>;
  /** CONNECT through the router, {@link SESSION_REQUESTS} direct round trips, DISCONNECT. */
  session(): Promise<void>;
  pids(): number[];
  stop(): Promise<void>;
}

/** The bus server the relay runs through. */
export type RelayServer = { kind: "xmpp"; xmpp: XmppServer } | { kind: "redis"; redis: RedisServer };

/** Who is who on the relay's bus: each endpoint's login, and where requests are sent. */
interface RelayPlan {
  caller: RawBusLogin;
  listener: RawBusLogin;
  drone: RawBusLogin;
  router: RawBusLogin;
  /** Where the router sends each request on. */
  routerForwardTo: string;
  /** The address a request for the service names, and the list or JID it is sent to. */
  serviceTo: string;
  serviceKey: string;
}

/** The relay's endpoints on `server`. */
function relayPlan(server: RelayServer): RelayPlan {
  if (server.kind === "xmpp") {
    const { xmpp } = server;
    const [user, password] = TEST_USERS[0]!;
    const [routerUser, routerPassword] = TEST_USERS[1]!;
    const login = (u: string, p: string, resource: string): RawBusLogin => ({
      kind: "xmpp",
      login: { host: xmpp.host, port: xmpp.port, domain: xmpp.domain, user: u, password: p, resource },
    });
    const routerJid = `${routerUser}@${xmpp.domain}/${RELAY_CLASS}`;
    return {
      caller: login(user, password, "bench_relay_caller"),
      listener: login(user, password, "bench_relay_listener"),
      drone: login(user, password, "bench_relay_drone"),
      router: login(routerUser, routerPassword, RELAY_CLASS),
      routerForwardTo: `${user}@${xmpp.domain}/bench_relay_listener`,
      serviceTo: routerJid,
      serviceKey: routerJid,
    };
  }
  // As OpenSRF main lays out its keys (src/redis/addresses.ts), on a router queue of its own
  // so that a real router on the same server never sees the relay's traffic.
  const { redis } = server;
  const domain = "localhost";
  const [user, password] = redis.accounts.opensrf;
  const [routerUser, routerPassword] = redis.accounts.router;
  const inbox = (who: string) => `opensrf:client:${user}:${domain}:bench:${process.pid}:${who}`;
  const serviceQueue = `opensrf:service:${user}:${domain}:${RELAY_CLASS}`;
  const login = (u: string, p: string, address: string, pop: string): RawBusLogin => ({
    kind: "redis",
    host: redis.host,
    port: redis.port,
    user: u,
    password: p,
    address,
    pop,
  });
  const routerQueue = `opensrf:router:benchrelay:${domain}`;
  return {
    caller: login(user, password, inbox("caller"), inbox("caller")),
    listener: login(user, password, inbox("listener"), serviceQueue),
    drone: login(user, password, inbox("drone"), inbox("drone")),
    router: login(routerUser, routerPassword, inbox("router"), routerQueue),
    routerForwardTo: serviceQueue,
    serviceTo: `opensrf:service:_:_:${RELAY_CLASS}`,
    serviceKey: routerQueue,
  };
}

/** Starts router, listener and drone relay processes and the caller's connection. */
export async function startRelay(server: RelayServer, dir: string, chunkSize = 51_200): Promise<Relay> {
  const plan = relayPlan(server);
  const socketPath = join(dir, "relay.sock");
  const caller = await connectRawBus(plan.caller);
  const replies = replyBodies(server.kind, chunkSize);

  const procs: Subprocess[] = [];
  const start = async (cfg: RelayNodeConfig) => {
    // A file, not argv: the drone's canned replies hold a megabyte.
    const file = join(dir, `relay-${cfg.role}.json`);
    writeFileSync(file, JSON.stringify(cfg));
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "relay-node.ts"), file], {
      stdout: "pipe",
      stderr: "inherit",
      stdin: "pipe", // closes when the bench dies, which ends the node
    });
    procs.push(proc);
    const reader = proc.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    if (!new TextDecoder().decode(value).includes("ready")) throw new Error(`relay ${cfg.role} did not start`);
  };
  await start({ role: "listener", login: plan.listener, socketPath });
  await start({ role: "drone", login: plan.drone, socketPath, caller: caller.address, replies });
  await start({ role: "router", login: plan.router, forwardTo: plan.routerForwardTo });

  // Calls waiting for replies, by thread: how many messages are still to come.
  const waiting = new Map<string, { left: number; from?: string; done: (from: string) => void }>();
  caller.onMessage((text) => {
    const thread = caller.threadOf(text);
    const w = thread === undefined ? undefined : waiting.get(thread);
    if (!w) return;
    if (--w.left > 0) return;
    waiting.delete(thread!);
    w.done(caller.fromOf(text));
  });

  let n = 0;
  /** Sends `body` (to the service through the router, or to `drone`) and resolves with the sender of the last of `replies`. */
  const call = (kind: string, body: string, replies: number, drone?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const thread = `${kind}-${++n}`;
      if (replies > 0) {
        const timer = setTimeout(() => {
          waiting.delete(thread);
          reject(new Error(`relay: no reply on ${thread} within 30 s`));
        }, 30_000);
        waiting.set(thread, {
          left: replies,
          done: (from) => {
            clearTimeout(timer);
            resolve(from);
          },
        });
      }
      if (drone) caller.send(drone, thread, body);
      else caller.send(plan.serviceTo, thread, body, plan.serviceKey);
      if (replies === 0) resolve("");
    });
  const echoBody = encodeBody([request(1, "opensrf.system.echo", ECHO_PARAMS, HEADER)]);
  const bigBody = encodeBody([request(1, "big", [BIG_BYTES], HEADER)]);
  const bigReplies = replies.big!.length;
  const echoOf = (kind: string, params: string[]) => {
    const body = encodeBody([request(1, "opensrf.system.echo", params, HEADER)]);
    const n = replies[kind]!.length;
    return async () => void (await call(kind, body, n));
  };

  return {
    async echo() {
      await call("echo", echoBody, 1);
    },
    async big() {
      await call("big", bigBody, bigReplies);
    },
    midEcho: echoOf("midecho", MID_ECHO_PARAMS),
    bigEcho: echoOf("bigecho", BIG_ECHO_PARAMS),
    async session() {
      const drone = await call("connect", encodeBody([connect(0, HEADER)]), 1);
      for (let i = 1; i <= SESSION_REQUESTS; i++) {
        await call("sreq", encodeBody([request(i, "opensrf.system.echo", ECHO_PARAMS, HEADER)]), 1, drone);
      }
      await call("sdisc", encodeBody([disconnect(SESSION_REQUESTS, HEADER)]), 0, drone);
    },
    pids: () => procs.map((p) => p.pid),
    async stop() {
      caller.close();
      for (const p of procs) p.kill("SIGTERM");
      await Promise.all(procs.map((p) => p.exited));
    },
  };
}
