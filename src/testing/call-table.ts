/**
 * Answers for the calls a service under test makes to other services (`ctx.call`): a
 * table of fake methods, turned into what {@link TableClient} asks for.
 */
import { MethodException } from "../app/errors.ts";
import { findJsonProblem } from "../app/serializable.ts";
import { RequestError } from "../client/errors.ts";
import { StatusClass } from "../protocol/status.ts";
import type { JsonValue } from "../protocol/types.ts";
import type { RecordedCall } from "./doubles.ts";

/**
 * A fake method of another service: returns every RESULT that service would send for these
 * params, in order (`[]` for none). Throw a {@link MethodException} to fail the call with
 * that status, as the other service would; the calling handler then gets the same error a
 * real `ctx.call` fails with (`statusCode`, `statusText`).
 */
export type CallFake = (...params: JsonValue[]) => readonly unknown[] | Promise<readonly unknown[]>;

/** Fake methods by service, then by method: `{ "open-ils.search": { "open-ils.search.x": (id) => [...] } }`. */
export type CallTable = Readonly<Record<string, Readonly<Record<string, CallFake>>>>;

/** Answers any call: every result for it, or a throw (rejection) to fail it. */
export type CallAnswer = (call: RecordedCall) => JsonValue[] | Promise<JsonValue[]>;

// What crosses the wire is JSON: copies keep a fake and the handler from sharing objects.
const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** The {@link CallAnswer} of a table (a function is used as it is). */
export function answerFrom(calls: CallTable | CallAnswer): CallAnswer {
  if (typeof calls === "function") return calls;
  return async (call) => {
    const where = `calls[${JSON.stringify(call.service)}][${JSON.stringify(call.method)}]`;
    const fake = Object.hasOwn(calls, call.service) ? calls[call.service]?.[call.method] : undefined;
    if (typeof fake !== "function") {
      throw new Error(
        `ctx.call(${JSON.stringify(call.service)}, ${JSON.stringify(call.method)}) has no answer: ` +
          `add ${where} to the calls of testService`,
      );
    }
    let results: readonly unknown[];
    try {
      results = await fake(...copy(call.params));
    } catch (e) {
      if (!(e instanceof MethodException)) throw e;
      const status = { className: StatusClass.METHOD_EXCEPTION, status: e.message, statusCode: e.statusCode };
      throw new RequestError(status, {
        service: call.service,
        method: call.method,
        thread: "",
        xid: call.opts?.xid ?? "",
      });
    }
    if (!Array.isArray(results)) {
      throw new TypeError(`${where} must return an array of results (every RESULT sent), got ${typeof results}`);
    }
    const problem = findJsonProblem(results);
    if (problem !== null) throw new TypeError(`${where} returned a result that is not JSON: ${problem}`);
    return copy(results as JsonValue[]);
  };
}
