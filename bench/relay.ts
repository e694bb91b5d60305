/**
 * The relay ceiling: bare XMPP clients (bench/raw-xmpp.ts) passing the stanzas one OpenSRF
 * call needs, through the same XMPP server — caller → router@dom/<class> → listener
 * (→ drone over a Unix socket, one-byte "free" note back) → drone → caller — with the same
 * stanza texts, and no OpenSRF code. What the bus could do if our processes cost nothing.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { TEST_USERS } from "../devkit/osrf-config.ts";
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
import { encodeStanza, escapeText } from "../src/xmpp/stanza.ts";
import { RawXmppClient } from "./raw-xmpp.ts";
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

/** Reply bodies (XML-escaped) a drone sends for each kind of call. */
function replyBodies(chunkSize: number): Record<string, string[]> {
  const esc = (msgs: Parameters<typeof encodeBody>[0]) => escapeText(encodeBody(msgs));
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

/** Starts router, listener and drone relay processes and the caller's connection. */
export async function startRelay(xmpp: XmppServer, dir: string, chunkSize = 51_200): Promise<Relay> {
  const [user, password] = TEST_USERS[0]!;
  const [routerUser, routerPassword] = TEST_USERS[1]!;
  const login = (u: string, p: string, resource: string) => ({
    host: xmpp.host,
    port: xmpp.port,
    domain: xmpp.domain,
    user: u,
    password: p,
    resource,
  });
  const jid = (u: string, resource: string) => `${u}@${xmpp.domain}/${resource}`;
  const callerJid = jid(user, "bench_relay_caller");
  const listenerJid = jid(user, "bench_relay_listener");
  const routerJid = jid(routerUser, RELAY_CLASS);
  const socketPath = join(dir, "relay.sock");
  const caller = await RawXmppClient.connect(login(user, password, "bench_relay_caller"));

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
  await start({ role: "listener", login: login(user, password, "bench_relay_listener"), socketPath });
  await start({
    role: "drone",
    login: login(user, password, "bench_relay_drone"),
    socketPath,
    caller: callerJid,
    replies: replyBodies(chunkSize),
  });
  await start({ role: "router", login: login(routerUser, routerPassword, RELAY_CLASS), forwardTo: listenerJid });

  // Calls waiting for replies, by thread: how many stanzas are still to come.
  const waiting = new Map<string, { left: number; from?: string; done: (from: string) => void }>();
  caller.onStanza((xml) => {
    const thread = /<thread>([^<]*)<\/thread>/.exec(xml)?.[1];
    const w = thread === undefined ? undefined : waiting.get(thread);
    if (!w) return;
    if (--w.left > 0) return;
    waiting.delete(thread!);
    w.done(/ from='([^']*)'| from="([^"]*)"/.exec(xml)?.slice(1).find(Boolean) ?? "");
  });

  let n = 0;
  const stanza = (to: string, thread: string, body: string) =>
    encodeStanza({
      to,
      from: callerJid,
      thread,
      body,
      routerFrom: "",
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: `${n}`,
    });
  const call = (kind: string, to: string, body: string, replies: number): Promise<string> =>
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
      caller.send(stanza(to, thread, body));
      if (replies === 0) resolve("");
    });
  const echoBody = encodeBody([request(1, "opensrf.system.echo", ECHO_PARAMS, HEADER)]);
  const bigBody = encodeBody([request(1, "big", [BIG_BYTES], HEADER)]);
  const replies = replyBodies(chunkSize);
  const bigReplies = replies.big!.length;
  const echoOf = (kind: string, params: string[]) => {
    const body = encodeBody([request(1, "opensrf.system.echo", params, HEADER)]);
    const n = replies[kind]!.length;
    return async () => void (await call(kind, routerJid, body, n));
  };

  return {
    async echo() {
      await call("echo", routerJid, echoBody, 1);
    },
    async big() {
      await call("big", routerJid, bigBody, bigReplies);
    },
    midEcho: echoOf("midecho", MID_ECHO_PARAMS),
    bigEcho: echoOf("bigecho", BIG_ECHO_PARAMS),
    async session() {
      const drone = await call("connect", routerJid, encodeBody([connect(0, HEADER)]), 1);
      for (let i = 1; i <= SESSION_REQUESTS; i++) {
        await call("sreq", drone, encodeBody([request(i, "opensrf.system.echo", ECHO_PARAMS, HEADER)]), 1);
      }
      await call("sdisc", drone, encodeBody([disconnect(SESSION_REQUESTS, HEADER)]), 0);
    },
    pids: () => procs.map((p) => p.pid),
    async stop() {
      caller.close();
      for (const p of procs) p.kill("SIGTERM");
      await Promise.all(procs.map((p) => p.exited));
    },
  };
}
