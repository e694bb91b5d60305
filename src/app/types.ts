/**
 * Shapes of the application runtime: what service authors write (methods, services, the
 * context a handler receives) and what the host that serves them looks like to a drone.
 *
 * Authors never see osrfMessage JSON: a handler gets its params and a context, and
 * returns or streams plain values.
 */

import type { BusConnection, BusMessage } from "../bus/types.ts";
import type { OsrfClient, PendingRequest } from "../client/types.ts";
import type { Clock } from "../clock/clock.ts";
import type { Logger } from "../log/types.ts";
import type { JsonValue } from "../protocol/types.ts";

// ---------------------------------------------------------------------------------------------
// Author API

/**
 * A value sent back to the caller as the `content` of one RESULT.
 *
 * Anything `JSON.stringify` can represent faithfully: null, booleans, finite numbers,
 * strings, arrays and objects of those (class-hinted `{"__c","__p"}` objects included;
 * objects with `toJSON`, such as `Date`, are sent as what `toJSON` returns). BigInts,
 * functions, symbols, cycles and non-finite numbers are refused at run time with an
 * exception naming the method, instead of being silently turned into `null` or dropped.
 */
export type ResultValue = unknown;

/**
 * What a handler may return (directly or through a promise):
 * - `undefined`: no RESULT (the request still completes);
 * - an async iterable, or a generator object from a `function*`: one RESULT per item;
 * - any other value (arrays included): exactly one RESULT carrying it.
 */
export type HandlerReturn = ResultValue | Promise<ResultValue>;

/**
 * The params a method declares: JSON values, where trailing optional ones
 * (`[JsonValue, JsonValue?]`) may be absent.
 */
export type MethodParams = readonly (JsonValue | undefined)[];

/** One parameter in a method's documentation. */
export interface SignatureParam {
  name: string;
  desc: string;
  /** Free-form type name, e.g. "string", "number", "object", "array". */
  type: string;
}

/** Documentation of a method, reported by introspection (the shape Perl services use). */
export interface MethodSignature {
  desc: string;
  params: SignatureParam[];
  return: { desc: string; type: string };
}

/** The session a request runs in. */
export interface MethodSession {
  /** The `<thread>` of the conversation. */
  readonly thread: string;
  /**
   * True when the caller opened the session with CONNECT: `state` then lives until
   * DISCONNECT or the keepalive timeout. False for a stateless request.
   */
  readonly stateful: boolean;
  /**
   * Per-session storage. For a stateful session it is shared by every request of the
   * session; for a stateless request it is a fresh object, dropped when the request ends.
   */
  readonly state: Record<string, unknown>;
}

/**
 * What a handler receives besides its params.
 *
 * @typeParam P The params tuple the method expects (not checked at run time beyond `argc`).
 */
export interface MethodContext<P extends MethodParams = JsonValue[]> {
  /** The request params, as sent by the caller. */
  readonly params: P;
  /** The method's api_name as defined (without `.atomic`). */
  readonly method: string;
  /** True when the caller asked for the `.atomic` twin (all results in one array). */
  readonly atomic: boolean;
  /** The service (application) name this host serves. */
  readonly service: string;
  readonly session: MethodSession;
  /** Locale of the request, e.g. "en-US" (OpenSRF's default when the caller sent none). */
  readonly locale: string;
  /** Time zone of the request, if the caller sent one. */
  readonly tz: string | undefined;
  /** Originator of the request, e.g. "srfsh", if the caller sent one. */
  readonly ingress: string | undefined;
  /** API level of the request (1 for every OpenSRF 3.x peer). */
  readonly apiLevel: number;
  /** The request id within the session (threadTrace). */
  readonly threadTrace: number;
  /** Transaction id of the request, for logs; passed on by `call`. */
  readonly xid: string;
  /** Logger whose lines carry this request's xid. */
  readonly log: Logger;
  /**
   * Sends one RESULT now (streaming). Results produced without waiting in between are
   * bundled into one message; they are flushed whenever the handler waits for something.
   * For an `.atomic` call the value is collected instead.
   *
   * @param value A JSON-serializable value; `undefined` is sent as `null`.
   * @throws ResultNotSerializableError if `value` cannot be sent as JSON.
   */
  respond(value: ResultValue): void;
  /**
   * Calls another service (stateless), passing this request's xid, locale, tz and ingress on.
   * Iterate the result for each response, or `await …collect()` / `…first()`.
   */
  call(service: string, method: string, ...params: JsonValue[]): PendingRequest;
  /** The OpenSRF client, e.g. for a stateful session with another service. */
  readonly client: OsrfClient;
}

/**
 * One method of a service.
 *
 * @typeParam P The params tuple the handler expects.
 */
export interface MethodDefinition<P extends MethodParams = JsonValue[]> {
  /** The api_name callers use, e.g. "add" or "open-ils.foo.bar.retrieve". */
  name: string;
  /** Minimum number of params; fewer is refused before the handler runs. Default 0. */
  argc?: number;
  /**
   * Runs the method. Return a value (one RESULT), `undefined` (none), or an async
   * iterable / generator (one RESULT per item); or call `ctx.respond` for each result.
   * A throw becomes an `osrfMethodException` for the caller; throw a
   * {@link MethodException} to choose its status code and text.
   */
  handler(ctx: MethodContext<P>, ...params: P): HandlerReturn;
  /**
   * Declares that the method may send several RESULTs. Informational (every method may
   * stream, and every method also exists as `<name>.atomic`).
   */
  stream?: boolean;
  /** Human documentation, reported by introspection as `notes`. */
  notes?: string;
  /** Structured documentation, reported by introspection as `signature`. */
  signature?: MethodSignature;
  /** Reported by introspection; results are not cached (C does not cache either). */
  cachable?: boolean;
  /**
   * Name reported by introspection as `method` (C reports the implementing function).
   * Defaults to the api_name.
   */
  symbol?: string;
}

/** A method definition whatever its params tuple, as services list them. */
export type AnyMethodDefinition = MethodDefinition<MethodParams>;

/** What lifecycle hooks receive. */
export interface ServiceEnv {
  /** The service name being served. */
  readonly service: string;
  readonly log: Logger;
  /** The OpenSRF client, when the process has one. */
  readonly client?: OsrfClient;
}

/** Lifecycle hooks and methods of a service, as given to {@link defineService}. */
export interface ServiceInput {
  /**
   * The service name, e.g. "opensrf.math". Optional: the configuration that starts the
   * service names it; when both are present the configuration wins.
   */
  name?: string;
  methods: readonly AnyMethodDefinition[];
  /** Runs once in the parent process before any drone starts (C: osrfAppInitialize). */
  init?(env: ServiceEnv): void | Promise<void>;
  /** Runs in each drone before it serves anything (C: osrfAppChildInit). A throw aborts the drone. */
  childInit?(env: ServiceEnv): void | Promise<void>;
  /** Runs in each drone just before it exits (C: osrfAppChildExit). */
  childExit?(env: ServiceEnv): void | Promise<void>;
}

/** A checked, frozen service definition, as returned by {@link defineService}. */
export interface ServiceDefinition extends Readonly<ServiceInput> {
  readonly methods: readonly AnyMethodDefinition[];
}

// ---------------------------------------------------------------------------------------------
// Registry (methods as the host serves them)

/** One callable api_name: an author method, its `.atomic` twin, or a system method. */
export interface RegisteredMethod {
  /** The name callers use, `.atomic` included. */
  readonly apiName: string;
  /** The definition behind it (shared by a method and its `.atomic` twin). */
  readonly definition: AnyMethodDefinition;
  readonly atomic: boolean;
  /** True for the `opensrf.system.*` methods every service has. */
  readonly system: boolean;
  readonly argc: number;
}

/** Every method of a service, in registration order (the order introspection reports). */
export interface MethodRegistry {
  get(apiName: string): RegisteredMethod | undefined;
  all(): readonly RegisteredMethod[];
}

/**
 * Introspection object for one method, keys in the C library's order
 * (`_osrfAppSetIntrospectMethod`); `signature` is added when the method has one (Perl does).
 */
export interface MethodDescription {
  api_name: string;
  /** The implementing symbol; null for system methods, as in C. */
  method: string | null;
  service: string;
  notes: string | null;
  argc: number;
  sysmethod: 0 | 1;
  atomic: 0 | 1;
  cachable: 0 | 1;
  signature?: MethodSignature;
}

// ---------------------------------------------------------------------------------------------
// Host

/** Per-service settings the host needs. */
export interface HostSettings {
  /** Seconds a stateful session may stay idle before it is dropped (`/apps/S/keepalive`). */
  keepalive: number;
  /** Results whose JSON is larger than this (bytes) are sent as partial messages. */
  maxChunkSize: number;
  /** Replies are bundled into one `<body>` up to this many bytes. */
  maxBundleSize: number;
}

/** What {@link createServiceHost} needs. */
export interface ServiceHostOptions {
  /** The service name served (from configuration). */
  service: string;
  definition: ServiceDefinition;
  /** The connection replies are sent on (the drone's own XMPP login). */
  transport: BusConnection;
  /** Client used by `ctx.call` and `ctx.client`. */
  client: OsrfClient;
  settings: HostSettings;
  logger: Logger;
  /** Method-name prefixes whose params are never logged (`log_protect/match_string`). */
  logProtect: readonly string[];
  /** Called after each REQUEST with its method, final status code and duration (metrics). */
  onRequestDone?: (method: string, status: number, ms: number) => void;
  /**
   * Called as each REQUEST's final reply is handed to the transport, before it can reach
   * the caller: a count kept here is current for anyone who has the answer.
   */
  onFinalReply?: () => void;
  /**
   * Time and timers of the keepalive (stateful session idle) timeout and of the close grace;
   * default the real ones.
   */
  clock?: Clock;
}

/** Why a stateful session ended. */
export type SessionEndReason =
  /** The caller sent DISCONNECT. */
  | "disconnect"
  /** No message within `keepalive` seconds; the caller got a 408. */
  | "timeout"
  /** A reply to the caller bounced: the caller is gone. */
  | "bounce"
  /** The host was closed. */
  | "close";

/**
 * Session state of a thread after a stanza was handled, so a prefork drone knows whether
 * it must stay pinned to the caller (`open`) or is free again (`none`, `closed`).
 */
export interface HandleOutcome {
  /**
   * - `none`: no stateful session on this thread (a stateless request, or junk);
   * - `open`: a stateful session is open on this thread;
   * - `closed`: this stanza ended a stateful session (DISCONNECT or a bounce).
   */
  session: "none" | "open" | "closed";
  thread: string;
}

/** Serves one service's requests from stanzas handed to it. */
export interface ServiceHost {
  /** The service name served. */
  readonly service: string;
  /**
   * Handles one stanza addressed to this service: replies go out on the transport. Resolves
   * once every message of the stanza has been dealt with (requests answered). Never rejects.
   * Stanzas of one thread are handled in arrival order, one at a time.
   */
  handle(stanza: BusMessage): Promise<HandleOutcome>;
  /**
   * {@link handle} without a promise when none is needed: the outcome itself when every
   * message of the stanza was dealt with before this returns (handlers that return a plain
   * value), else a promise of it. For callers that serve one stanza after another and
   * would otherwise wait a turn of the event loop per stanza (a drone). Never throws or
   * rejects.
   */
  serve(stanza: BusMessage): HandleOutcome | Promise<HandleOutcome>;
  /** Registers a callback run whenever a stateful session ends, with the reason. */
  onSessionEnd(cb: (thread: string, reason: SessionEndReason) => void): void;
  /** Number of open stateful sessions. */
  activeSessions(): number;
  /**
   * Stops serving: later stanzas are ignored, sessions end (reason `close`, no message to
   * the callers), and in-flight requests get up to `graceMs` (default 5000) to finish.
   * Does not close the transport or the client.
   */
  close(graceMs?: number): Promise<void>;
}
