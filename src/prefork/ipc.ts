/**
 * Messages between the listener and its drones, over Bun's IPC channel with "json"
 * serialization (see spawner.ts): stanzas travel as plain objects, framed by Bun. Every
 * message must therefore be plain JSON data (no undefined members relied on, no Maps).
 *
 * The channel is a private socket pair between a listener and the drones it spawned, but
 * both ends still check shapes: a drone from another build, or a bug, must produce one
 * clear log line rather than a crash deep in the pool.
 */

import { BUS_MESSAGE_FIELDS } from "../bus/message.ts";
import type { BusMessage } from "../bus/types.ts";
import type { ClientConfig, PreforkSettings } from "../config/types.ts";
import type { LogFormat } from "../log/logger.ts";
import { RETIRE_CAUSES, type RetireCause } from "../metrics/types.ts";
// Not from stanza.ts: that would load ltx and the stanza code into every drone, Redis ones too.
import { decodeXmlBody } from "../xmpp/xml-tokenizer.ts";
import type { BoardSlotRef } from "./board.ts";

/** A caller waiting on one stanza: where an error status must go. */
export interface CallerRef {
  /** The caller's JID (`router_from`, else `from`). */
  to: string;
  thread: string;
  xid: string;
  /** threadTraces of the REQUEST/CONNECT messages still unanswered. */
  threadTraces: number[];
}

/** Per-service settings a drone needs (the rest of {@link PreforkSettings} is the listener's). */
export type DroneSettings = Pick<
  PreforkSettings,
  "keepalive" | "maxChunkSize" | "maxBundleSize" | "maxMemoryMb" | "warmupRequests"
>;

/** Everything a drone needs, sent in its `init` IPC message (never on argv or in env: it holds the password). */
export interface DroneInit {
  /** Service name, e.g. "opensrf.math". */
  service: string;
  /** Absolute path of the service module. */
  appPath: string;
  /** Host name used in the drone's XMPP resource. */
  hostname: string;
  /** `/config/opensrf` of opensrf_core.xml: XMPP login and logging. */
  client: ClientConfig;
  /** `/config/shared/log_protect/match_string`. */
  logProtect: string[];
  settings: DroneSettings;
  /** This drone's own max_requests (jitter already applied). */
  maxRequests: number;
  /** Log destination, level and line format after command-line overrides. */
  log: { logfile: string; loglevel: number; format?: LogFormat };
  /**
   * This drone's slot on the free-drone board (board.ts): it then reports a finished
   * message there, and by `available` only while the listener's "wanted" flag is set.
   * Absent: `available` after every message.
   */
  board?: BoardSlotRef;
}

/** Listener → drone. */
export type ListenerToDrone =
  /** First message: configuration (holds the XMPP password, hence IPC and not argv/env). */
  | { type: "init"; init: DroneInit }
  /**
   * One message from a router for this service, as received. `xmlBody`: its body as it was
   * on the wire, still XML-escaped (the listener forwards it undecoded); `stanza.body` is
   * empty then, and the drone decodes this ({@link parseListenerMessage}). `badBody`, on
   * the drone's side only: why that body could not be decoded.
   */
  | { type: "request"; stanza: BusMessage; xmlBody?: string; badBody?: string }
  /**
   * Stop: `graceful` finishes the current work first (and runs childExit); otherwise exit
   * now. `reason` is why the pool retires it (logged by the drone, counted by the metrics).
   */
  | { type: "shutdown"; graceful: boolean; reason: RetireCause };

/** Why a drone leaves by itself. */
export type DroneExitReason =
  /** Served its max_requests. */
  | "max_requests"
  /** Private memory above max_memory_mb after a request. */
  | "memory"
  /** Could not load the app, log in to XMPP, or run childInit. */
  | "init_failed"
  /** Told to stop (shutdown message or SIGTERM). */
  | "shutdown";

/**
 * `unit` on `busy` and `waiting`: the drone's count of the listener's messages when it
 * sent it (as `served` on `available`), so that the pool can tell a message about one it
 * has since seen finished on the board (pool.ts).
 */

/** One request a drone finished: method, final status code, milliseconds (for metrics). */
export type RequestDone = [method: string, status: number, ms: number];

/**
 * Drone → listener. Any message may carry `done`: requests finished since the drone's
 * previous message (the pool ignores it; the metrics read it).
 */
export type DroneToListener = {
  done?: RequestDone[];
} /** Logged in and childInit done; requests handed over before this were queued. */ & (
  | { type: "ready"; address: string }
  /**
   * Running a request (`method`, since epoch ms `since`). `caller` says whom to answer if
   * the drone dies or times out while running it — needed for session requests, which
   * reach the drone directly and never pass the listener. For a message the listener
   * handed over, sent only once the request outlasts a turn of the drone's event loop.
   */
  | { type: "busy"; method: string; since: number; caller?: CallerRef; unit?: number }
  /** In a stateful session, between requests: not running anything, not available either. */
  | { type: "waiting"; thread: string; unit?: number }
  /**
   * Done with the listener's last message (and any session it opened); `served` counts the
   * listener's messages so far. With a board, sent only while the listener wants it.
   */
  | { type: "available"; served: number; rssBytes: number }
  /**
   * Only carries `done` (metrics), from a drone with a board that has sent nothing else for
   * a while; says nothing about the drone's state.
   */
  | { type: "report" }
  /** Leaving now; no `available` follows. */
  | { type: "exiting"; reason: DroneExitReason; served: number; detail?: string }
);

const EXIT_REASONS: ReadonlySet<string> = new Set<DroneExitReason>([
  "max_requests",
  "memory",
  "init_failed",
  "shutdown",
]);

/** Thrown by the parsers for a message of the wrong shape; `raw` is a short preview. */
export class IpcMessageError extends Error {
  override readonly name = "IpcMessageError";
  constructor(
    readonly problem: string,
    readonly raw: string,
  ) {
    super(`bad IPC message: ${problem}: ${raw}`);
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function preview(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function need(cond: boolean, problem: string, v: unknown): asserts cond {
  if (!cond) throw new IpcMessageError(problem, preview(v));
}

const isStr = (v: unknown): v is string => typeof v === "string";
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function checkCaller(v: unknown, msg: unknown): CallerRef {
  need(isObj(v), "busy.caller is not an object", msg);
  need(isStr(v.to) && isStr(v.thread) && isStr(v.xid), "busy.caller needs to, thread and xid strings", msg);
  need(Array.isArray(v.threadTraces) && v.threadTraces.every(isNum), "busy.caller.threadTraces must be numbers", msg);
  return { to: v.to, thread: v.thread, xid: v.xid, threadTraces: v.threadTraces as number[] };
}

function checkUnit(v: unknown, msg: unknown): number {
  need(isNum(v), "unit must be a number", msg);
  return v;
}

/**
 * Checks a message received from a drone.
 * @throws IpcMessageError naming what is wrong.
 */
export function parseDroneMessage(m: unknown): DroneToListener {
  need(isObj(m) && isStr(m.type), "not an object with a type", m);
  switch (m.type) {
    case "ready":
      need(isStr(m.address), "ready.address must be a string", m);
      return { type: "ready", address: m.address };
    case "busy": {
      need(isStr(m.method) && isNum(m.since), "busy needs method (string) and since (number)", m);
      const out: DroneToListener = { type: "busy", method: m.method, since: m.since };
      if (m.caller !== undefined) out.caller = checkCaller(m.caller, m);
      if (m.unit !== undefined) out.unit = checkUnit(m.unit, m);
      return out;
    }
    case "waiting": {
      need(isStr(m.thread), "waiting.thread must be a string", m);
      const out: DroneToListener = { type: "waiting", thread: m.thread };
      if (m.unit !== undefined) out.unit = checkUnit(m.unit, m);
      return out;
    }
    case "available":
      need(isNum(m.served) && isNum(m.rssBytes), "available needs served and rssBytes numbers", m);
      return { type: "available", served: m.served, rssBytes: m.rssBytes };
    case "report":
      return { type: "report" };
    case "exiting": {
      need(isStr(m.reason) && EXIT_REASONS.has(m.reason), "exiting.reason is not a known reason", m);
      need(isNum(m.served), "exiting.served must be a number", m);
      const out: DroneToListener = { type: "exiting", reason: m.reason as DroneExitReason, served: m.served };
      if (m.detail !== undefined) {
        need(isStr(m.detail), "exiting.detail must be a string", m);
        out.detail = m.detail;
      }
      return out;
    }
    default:
      throw new IpcMessageError(`unknown type "${m.type}"`, preview(m));
  }
}

/**
 * The IPC message that hands `stanza` to a drone. A stanza with its body still as XML text
 * (the listener's connection keeps them so) travels with that text and an empty `body`, so
 * the listener never decodes a body or escapes its quotes again for JSON.
 */
export function requestMessage(stanza: BusMessage): ListenerToDrone {
  const xmlBody = stanza.xmlBody;
  if (xmlBody === undefined) return { type: "request", stanza };
  const plain: BusMessage = {
    to: stanza.to,
    from: stanza.from,
    thread: stanza.thread,
    body: "",
    routerFrom: stanza.routerFrom,
    routerTo: stanza.routerTo,
    routerClass: stanza.routerClass,
    routerCommand: stanza.routerCommand,
    xid: stanza.xid,
  };
  if (stanza.error) plain.error = stanza.error;
  if (stanza.fromQueue !== undefined) plain.fromQueue = stanza.fromQueue;
  return { type: "request", stanza: plain, xmlBody };
}

/**
 * Whether a drone's IPC message counting `unit` of the listener's messages (`busy`,
 * `waiting`, `available`) is about one it finished before it was handed the next, i.e.
 * `unit` below the messages `handed` to it so far. Only a drone on the free-drone board (board.ts) can send one: the
 * pool learns from the board that a message is finished, and hands out another, before
 * that drone's IPC arrives. The pool and its metrics both ignore such a message.
 */
export function isStaleReport(unit: unknown, handed: number): boolean {
  return typeof unit === "number" && unit < handed;
}

/** Whether a message's body is empty, without decoding one kept as XML text. */
export function hasEmptyBody(s: BusMessage): boolean {
  return (s.xmlBody ?? s.body) === "";
}

/** Every field of a BusMessage is a string (a loop, not `every`: this runs per request). */
function hasStringFields(s: Record<string, unknown>): boolean {
  for (let i = 0; i < BUS_MESSAGE_FIELDS.length; i++) if (typeof s[BUS_MESSAGE_FIELDS[i]!] !== "string") return false;
  return true;
}

/**
 * Checks a message received from the listener. The `init` payload is checked for the
 * fields the drone needs before it can log anything; the rest is trusted (it comes from
 * the same build).
 * @throws IpcMessageError naming what is wrong.
 */
export function parseListenerMessage(m: unknown): ListenerToDrone {
  need(isObj(m) && isStr(m.type), "not an object with a type", m);
  switch (m.type) {
    case "init": {
      const i = m.init;
      need(
        isObj(i) && isStr(i.service) && isStr(i.appPath) && isStr(i.hostname),
        "init needs service, appPath, hostname",
        "init",
      );
      need(
        isObj(i.client) && isObj(i.settings) && isObj(i.log) && isNum(i.maxRequests),
        "init needs client, settings, log, maxRequests",
        "init",
      );
      need(Array.isArray(i.logProtect), "init.logProtect must be an array", "init");
      return { type: "init", init: i as unknown as DroneInit };
    }
    case "request": {
      const s = m.stanza;
      need(isObj(s) && hasStringFields(s), "request.stanza is not a stanza", m);
      const stanza = s as unknown as BusMessage;
      if (m.xmlBody === undefined) return { type: "request", stanza };
      need(isStr(m.xmlBody), "request.xmlBody must be a string", m);
      const decoded = decodeXmlBody(m.xmlBody);
      stanza.body = decoded.body;
      return decoded.error === undefined
        ? { type: "request", stanza }
        : { type: "request", stanza, badBody: decoded.error };
    }
    case "shutdown":
      need(typeof m.graceful === "boolean", "shutdown.graceful must be a boolean", m);
      need(
        isStr(m.reason) && (RETIRE_CAUSES as readonly string[]).includes(m.reason),
        `shutdown.reason must be one of ${RETIRE_CAUSES.join(", ")}`,
        m,
      );
      return { type: "shutdown", graceful: m.graceful, reason: m.reason as RetireCause };
    default:
      throw new IpcMessageError(`unknown type "${m.type}"`, preview(m));
  }
}
