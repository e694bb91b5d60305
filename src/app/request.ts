/**
 * Serving one REQUEST: method lookup, argc check, the activity log line, running the
 * handler, and turning what it returns, streams or throws into replies.
 *
 * Status codes, checked against OpenSRF 3.3's osrf_application.c:
 * - unknown method and too few params: `osrfMethodException` 404, C's exact texts
 *   (`osrfAppRequestRespondException` always sends OSRF_STATUS_NOTFOUND; the argc check is
 *   compiled in, libopensrf is built with -DOSRF_STRICT_PARAMS).
 * - a handler that throws: C sends 404 "An unknown server error occurred", which hides the
 *   cause. We send what Perl services send (OpenSRF/Application.pm): 500 with
 *   " *** Call to [M] failed for session [T], thread trace [N]:\n<message>\n". Both C and
 *   Perl clients treat any osrfMethodException as a failed request, whatever its code.
 * - a {@link MethodException}: its own code and text.
 * - a result that is not JSON: 500, naming the method and the offending value.
 * No "Request Complete" follows an exception, as in C.
 */

import type { BusConnection } from "../bus/types.ts";
import type { OsrfClient } from "../client/types.ts";
import { formatParams } from "../log/redact.ts";
import { type Logger, LogLevel } from "../log/types.ts";
import { DEFAULT_LOCALE, type HeaderOptions } from "../protocol/messages.ts";
import { StatusCode, Texts } from "../protocol/status.ts";
import type { JsonValue, RequestMessage } from "../protocol/types.ts";
import { MethodException, ResultNotSerializableError } from "./errors.ts";
import { type ReplyLimits, ReplyWriter } from "./reply.ts";
import { findJsonProblem } from "./serializable.ts";
import type { MethodContext, MethodRegistry, MethodSession, RegisteredMethod } from "./types.ts";
import { loggerWithXid } from "./xid-logger.ts";

/** What every request of a host shares. */
export interface RequestEnv {
  service: string;
  registry: MethodRegistry;
  transport: BusConnection;
  client: OsrfClient;
  limits: ReplyLimits;
  logger: Logger;
  logProtect: readonly string[];
  /** See ServiceHostOptions.onFinalReply. */
  onFinalReply?: () => void;
}

/** One REQUEST and where it came from. */
export interface IncomingRequest {
  msg: RequestMessage;
  /** The caller's JID. */
  replyTo: string;
  thread: string;
  xid: string;
  session: MethodSession;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === "object" || typeof v === "function") &&
    typeof (v as PromiseLike<unknown>).then === "function"
  );
}

// Async iterables (async generators, a PendingRequest from ctx.call, streams) and sync
// generator objects stream; arrays and other iterables are single values.
function isStream(v: unknown): v is AsyncIterable<unknown> | Iterable<unknown> {
  if (v === null || (typeof v !== "object" && typeof v !== "function")) return false;
  if (typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") return true;
  return Object.prototype.toString.call(v) === "[object Generator]";
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The exception status an error becomes, per the table at the top of this file. */
function exceptionFor(err: unknown, apiName: string, req: IncomingRequest): { code: number; text: string } {
  if (err instanceof MethodException) return { code: err.statusCode, text: err.message };
  if (err instanceof ResultNotSerializableError) return { code: StatusCode.INTERNALSERVERERROR, text: err.message };
  return {
    code: StatusCode.INTERNALSERVERERROR,
    text:
      ` *** Call to [${apiName}] failed for session [${req.thread}], ` +
      `thread trace [${req.msg.threadTrace}]:\n${messageOf(err)}\n`,
  };
}

/**
 * Serves one REQUEST, with the final status code sent (205 Request Complete, or the
 * exception's code) once its last reply is sent (or the handler failed). A handler that
 * returns a plain value (or nothing) is served without waiting: the code comes back as a
 * number, not a promise — most requests, and a drone's JIT is cold for most of them. Never
 * throws or rejects: every failure becomes an exception status for the caller.
 */
export function serveRequest(env: RequestEnv, req: IncomingRequest): number | Promise<number> {
  const { msg } = req;
  const apiName = msg.payload.method;
  const params = msg.payload.params;
  const log = loggerWithXid(env.logger, req.xid);
  // Replies copy the request's locale and tz; C never echoes ingress back (sample H).
  const header: HeaderOptions = { locale: msg.locale ?? DEFAULT_LOCALE, apiLevel: 1 };
  if (msg.tz !== undefined) header.tz = msg.tz;
  const writer = new ReplyWriter(
    env.transport,
    { to: req.replyTo, thread: req.thread, xid: req.xid },
    msg.threadTrace,
    header,
    env.limits,
    log,
    env.onFinalReply,
  );

  // Formatting the parameters (JSON, log_protect) costs more than the rest of an echo request.
  if (log.enabled?.(LogLevel.ACTIVITY) ?? true) {
    log.activity(`Running ${env.service} ${apiName} [ ${formatParams(apiName, params, env.logProtect)} ]`);
  }

  const method = env.registry.get(apiName);
  if (method === undefined) {
    const text = Texts.methodNotFound(apiName, env.service);
    log.warn(`Returning method exception with message: ${text}`);
    writer.exception(StatusCode.NOTFOUND, text);
    return StatusCode.NOTFOUND;
  }
  if (params.length < method.argc) {
    const text = Texts.notEnoughParams(apiName, env.service);
    log.warn(`Returning method exception with message: ${text}`);
    writer.exception(StatusCode.NOTFOUND, text);
    return StatusCode.NOTFOUND;
  }
  return new RequestRun(env, req, method, writer, log).start();
}

/** One request from its handler's call to its final reply. */
class RequestRun {
  private readonly collected: unknown[] = [];
  private readonly ctx: MethodContext;
  private readonly apiName: string;

  constructor(
    private readonly env: RequestEnv,
    private readonly req: IncomingRequest,
    private readonly method: RegisteredMethod,
    private readonly writer: ReplyWriter,
    private readonly log: Logger,
  ) {
    this.apiName = req.msg.payload.method;
    this.ctx = buildContext(env, req, method, log, (value) => this.respond(value));
  }

  /** Calls the handler; what it returns decides whether anything is waited for. */
  start(): number | Promise<number> {
    const { writer } = this;
    // Results of the synchronous part share a body with what follows them (the 205 at
    // once when nothing is waited for): no flush is scheduled for them until then.
    writer.hold();
    let ret: unknown;
    try {
      ret = this.method.definition.handler(this.ctx, ...this.req.msg.payload.params);
      if (isThenable(ret) || isStream(ret)) {
        writer.release();
        return this.wait(ret);
      }
      if (ret !== undefined) this.ctx.respond(ret);
      return this.finish();
    } catch (err) {
      return this.fail(err);
    }
  }

  private async wait(ret: unknown): Promise<number> {
    try {
      if (isThenable(ret)) ret = await ret;
      if (isStream(ret)) {
        for await (const item of ret) this.ctx.respond(item);
      } else if (ret !== undefined) {
        this.ctx.respond(ret);
      }
      return this.finish();
    } catch (err) {
      return this.fail(err);
    }
  }

  private respond(value: unknown): void {
    const { writer } = this;
    if (writer.done) {
      this.log.warn(`${this.env.service} ${this.apiName}: result sent after the request ended was dropped`);
      return;
    }
    const v = value === undefined ? null : value;
    const problem = findJsonProblem(v);
    if (problem !== null) throw new ResultNotSerializableError(this.apiName, problem);
    if (this.method.atomic) this.collected.push(v);
    else writer.result(v as JsonValue);
  }

  /** The handler is done: the atomic array, then 205 (throws on a failed send, for fail()). */
  private finish(): number {
    const { writer } = this;
    if (this.method.atomic) writer.result(this.collected as JsonValue[]);
    if (writer.sendError !== undefined) {
      throw new MethodException(
        StatusCode.INTERNALSERVERERROR,
        `Unable to send the results of [${this.apiName}]: ${writer.sendError.message}`,
      );
    }
    writer.complete();
    return StatusCode.COMPLETE;
  }

  private fail(err: unknown): number {
    const { code, text } = exceptionFor(err, this.apiName, this.req);
    if (err instanceof MethodException) {
      this.log.warn(`Returning method exception with message: ${text}`);
    } else {
      const detail = err instanceof Error && err.stack ? err.stack : messageOf(err);
      this.log.error(`${this.env.service} ${this.apiName} failed: ${detail}`);
    }
    this.writer.exception(code, text);
    return code;
  }
}

function buildContext(
  env: RequestEnv,
  req: IncomingRequest,
  method: RegisteredMethod,
  log: Logger,
  respond: (value: unknown) => void,
): MethodContext {
  const { msg } = req;
  const locale = msg.locale ?? DEFAULT_LOCALE;
  return {
    params: msg.payload.params,
    method: method.definition.name,
    atomic: method.atomic,
    service: env.service,
    session: req.session,
    locale,
    tz: msg.tz,
    ingress: msg.ingress,
    apiLevel: msg.apiLevel,
    threadTrace: msg.threadTrace,
    xid: req.xid,
    log,
    respond,
    // Nested calls carry the request's xid, locale, tz and ingress, as C's do (sample G).
    call: (service, m, ...callParams) =>
      env.client.request(service, m, callParams, { xid: req.xid, locale, tz: msg.tz, ingress: msg.ingress }),
    client: env.client,
  };
}
