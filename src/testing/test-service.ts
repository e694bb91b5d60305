/**
 * `testService`: a service served in-process for the author's own tests, with no XMPP
 * server. The real {@link createServiceHost} answers, as in a drone; the real OpenSRF
 * client calls it, over a {@link MemoryLink}. So dispatch, argc checks, `.atomic`,
 * streaming and chunking, CONNECT sessions and the keepalive timeout, and the exception
 * statuses are exactly the server's, seen exactly as a caller sees them.
 */
import { defineService } from "../app/define.ts";
import { createServiceHost } from "../app/host.ts";
import type {
  HostSettings,
  ServiceDefinition,
  ServiceEnv,
  ServiceHost,
  ServiceInput,
  SessionEndReason,
} from "../app/types.ts";
import { Client } from "../client/client.ts";
import { RequestError } from "../client/errors.ts";
import type { ClientSession, PendingRequest, RequestOptions } from "../client/types.ts";
import { OSRF_MSG_BUNDLE_SIZE, OSRF_MSG_CHUNK_SIZE } from "../protocol/chunking.ts";
import type { JsonValue } from "../protocol/types.ts";
import { answerFrom, type CallAnswer, type CallTable } from "./call-table.ts";
import { type LogLine, type RecordedCall, RecordingLogger, TableClient } from "./doubles.ts";
import { ManualClock } from "./manual-clock.ts";
import { MemoryLink } from "./memory-link.ts";
import { MethodError } from "./method-error.ts";

/** Options of {@link testService}. */
export interface TestServiceOptions {
  /** The service name served; default the definition's `name` (one of the two is needed). */
  service?: string;
  /**
   * What opensrf.xml would say: `keepalive` (seconds a CONNECT session may stay idle,
   * default 5), `maxChunkSize` (default 51200) and `maxBundleSize` (default 25600).
   */
  settings?: Partial<HostSettings>;
  /** Answers for `ctx.call` to other services: a table of fake methods, or one function. Default: none. */
  calls?: CallTable | CallAnswer;
  /**
   * Run the lifecycle hooks as the server does: `init` then `childInit` before the first
   * call, `childExit` on {@link TestService.close}. Default true.
   */
  lifecycle?: boolean;
  /** Method-name prefixes whose params are never logged (`log_protect`). */
  logProtect?: readonly string[];
  /** Seconds to wait for each reply before a call fails (default 30). */
  timeout?: number;
}

/** Request headers a caller may set. */
export interface CallOptions {
  locale?: string;
  tz?: string;
  ingress?: string;
}

/** What calls made through a {@link TestService} or a {@link TestSession} can do. */
export interface TestCaller {
  /**
   * Calls `method` with `params` and resolves with every result, in order (`[4]` for a
   * method returning 4, `[]` for one returning nothing, `[[…]]` for a `.atomic` call).
   * @throws MethodError when the service answers with an exception status.
   */
  call(method: string, ...params: JsonValue[]): Promise<JsonValue[]>;
  /**
   * Calls `method`; iterate the result to see each result as it arrives
   * (`for await (const r of t.request("m", [1]))`), or `collect()` / `first()`.
   * Fails with {@link MethodError} like {@link call}.
   */
  request(method: string, params?: JsonValue[], opts?: CallOptions): PendingRequest;
}

/** A CONNECT session with the service under test. */
export interface TestSession extends TestCaller {
  /** The session's thread. */
  readonly thread: string;
  /** True until DISCONNECT, or until the service dropped the session (keepalive timeout). */
  readonly connected: boolean;
  /** Why the service ended the session (`"disconnect"`, `"timeout"`, …); undefined while open. */
  readonly ended: SessionEndReason | undefined;
  /** Sends DISCONNECT and resolves once the service has ended the session. */
  disconnect(): Promise<void>;
}

/** A service served in-process. */
export interface TestService extends TestCaller {
  /** The service name served. */
  readonly service: string;
  /** Opens a CONNECT session (the service answers 200 "Connection Successful"). */
  session(opts?: CallOptions): Promise<TestSession>;
  /**
   * Moves the keepalive clock forward by `seconds` and resolves once the service has acted
   * on it: sessions idle for `keepalive` seconds get the 408 "Disconnected on timeout" a
   * real caller gets. (Only the keepalive runs on this clock; timers of your own code do not.)
   */
  advance(seconds: number): Promise<void>;
  /** Every `ctx.call` the service made, in order. */
  readonly outbound: readonly RecordedCall[];
  /** Every line the service logged (`ctx.log`, the lifecycle hooks' `log`, the host). */
  readonly logs: readonly LogLine[];
  /** The host serving the service. */
  readonly host: ServiceHost;
  /** Stops serving; runs `childExit` (with `lifecycle`). Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_S = 30;

function nameOf(definition: ServiceDefinition, given: string | undefined): string {
  const name = given ?? definition.name;
  if (name === undefined || name === "") {
    throw new TypeError(
      'testService: the service has no name; pass one, e.g. testService(svc, { service: "my.service" })',
    );
  }
  return name;
}

/** The client's errors as a test sees them: an exception status becomes a {@link MethodError}. */
function asTestError(e: unknown, service: string, method: string): unknown {
  if (!(e instanceof RequestError)) return e;
  return new MethodError(
    { className: e.className, status: e.statusText, statusCode: e.statusCode },
    { service, method },
  );
}

/** A request sent once `ready` resolves, failing with {@link MethodError} for exception statuses. */
function pending(ready: Promise<unknown>, send: () => PendingRequest, service: string, method: string): PendingRequest {
  const started = ready.then(send);
  started.catch(() => {}); // reported to whoever reads the results
  const translate = (e: unknown): never => {
    throw asTestError(e, service, method);
  };
  const collect = () => started.then((p) => p.collect()).catch(translate);
  return {
    collect,
    first: () => collect().then((all) => all[0]),
    async *[Symbol.asyncIterator]() {
      try {
        yield* await started;
      } catch (e) {
        translate(e);
      }
    },
  };
}

/**
 * Serves `service` in this process for a test: `await t.call("add", 2, 2)` → `[4]`.
 *
 * @param service The module's default export (`defineService(...)`, or a plain object of
 *   that shape, checked the same way the server checks it).
 * @throws TypeError for an invalid definition, or when the service has no name.
 *
 * @example
 * import { expect, test } from "bun:test";
 * import { MethodError, testService } from "osrf-prefork/testing";
 * import service from "../src/service.ts";
 *
 * test("add", async () => {
 *   const t = testService(service);
 *   expect(await t.call("math.add", 2, 2)).toEqual([4]);
 *   await t.close();
 * });
 */
export function testService(service: ServiceDefinition | ServiceInput, options: TestServiceOptions = {}): TestService {
  const definition = defineService(service);
  const name = nameOf(definition, options.service);
  const logger = new RecordingLogger([], name);
  const clock = new ManualClock();
  const link = new MemoryLink(name);
  const table = new TableClient(answerFrom(options.calls ?? {}));
  const host = createServiceHost({
    service: name,
    definition,
    transport: link.service,
    client: table,
    settings: {
      keepalive: options.settings?.keepalive ?? 5,
      maxChunkSize: options.settings?.maxChunkSize ?? OSRF_MSG_CHUNK_SIZE,
      maxBundleSize: options.settings?.maxBundleSize ?? OSRF_MSG_BUNDLE_SIZE,
    },
    logger,
    logProtect: options.logProtect ?? [],
    clock,
  });
  link.service.onMessage((s) => host.handle(s));
  const ended = new Map<string, SessionEndReason>();
  host.onSessionEnd((thread, reason) => ended.set(thread, reason));
  const client = new Client({
    transport: link.caller,
    routerName: "router",
    logger: new RecordingLogger([], "testing-caller"),
    timeout: options.timeout ?? DEFAULT_TIMEOUT_S,
    ownTransport: true,
  });

  const lifecycle = options.lifecycle ?? true;
  const env: ServiceEnv = { service: name, log: logger, client: table };
  const ready = lifecycle
    ? (async () => {
        await definition.init?.(env);
        await definition.childInit?.(env);
      })()
    : Promise.resolve();
  ready.catch(() => {}); // reported by every call

  const caller = (send: (method: string, params: JsonValue[], opts: RequestOptions) => PendingRequest) => ({
    call: (method: string, ...params: JsonValue[]) =>
      pending(ready, () => send(method, params, {}), name, method).collect(),
    request: (method: string, params: JsonValue[] = [], opts?: CallOptions) =>
      pending(ready, () => send(method, params, { ...opts }), name, method),
  });

  let closed: Promise<void> | undefined;
  return {
    service: name,
    host,
    outbound: table.calls,
    logs: logger.lines,
    ...caller((method, params, opts) => client.request(name, method, params, opts)),
    async session(opts?: CallOptions): Promise<TestSession> {
      await ready;
      const s: ClientSession = client.session(name);
      try {
        await s.connect({ ...opts });
      } catch (e) {
        throw asTestError(e, name, "CONNECT");
      }
      return {
        thread: s.thread,
        get connected() {
          return s.connected;
        },
        get ended() {
          return ended.get(s.thread);
        },
        ...caller((method, params, o) => s.request(method, params, o)),
        async disconnect() {
          s.disconnect();
          await link.settled("service");
        },
      };
    },
    async advance(seconds: number) {
      if (!(seconds >= 0)) throw new RangeError(`advance needs a non-negative number of seconds, got ${seconds}`);
      // What the timers send (the 408 of a timed-out session) is on its way to the caller.
      clock.advance(seconds * 1000);
      await link.settled("caller");
    },
    close() {
      closed ??= (async () => {
        const started = await ready.then(
          () => true,
          () => false,
        );
        await host.close();
        await client.close();
        if (lifecycle && started) await definition.childExit?.(env);
      })();
      return closed;
    },
  };
}
