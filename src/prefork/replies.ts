/**
 * The STATUS a caller gets when the pool could not serve its request, and the stanza that
 * carries it. Bodies are decoded only here, on these failure paths.
 */

import type { BusMessage, OutgoingBusMessage } from "../bus/types.ts";
import type { Logger } from "../log/types.ts";
import { decodeBody, encodeBody } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { methodException } from "../protocol/messages.ts";
import { StatusCode, Texts } from "../protocol/status.ts";
import type { ErrorTarget, PoolFailure } from "./types.ts";

/** Status code and text for a pool failure. */
export interface FailureStatus {
  code: number;
  text: string;
}

/**
 * Codes: 503 when the request never reached a drone (backlog full — C 3.3's exact text —,
 * or shutting down); 500 when a drone was lost while holding it (died, or killed after
 * request_timeout). Not 408 for the time limit: OpenSRF clients (C, Perl and ours) treat
 * any 408 as "stateful session dropped" and resend the request through the router, which
 * would run a hung request again.
 */
export function failureStatus(service: string, f: PoolFailure): FailureStatus {
  switch (f.kind) {
    case "overload":
      return { code: StatusCode.SERVICEUNAVAILABLE, text: Texts.backlogFull };
    case "shutdown":
      return { code: StatusCode.SERVICEUNAVAILABLE, text: `Service unavailable: ${service} is shutting down` };
    case "died": {
      const how = f.signal ? `killed by ${f.signal}` : `exit code ${f.code}`;
      const what = f.method ? `running ${f.method}` : "serving this request";
      return {
        code: StatusCode.INTERNALSERVERERROR,
        text: f.starting
          ? `${service}: the worker (pid ${f.pid}) given this request died during start-up (${how})`
          : `${service}: the worker (pid ${f.pid}) ${what} died (${how})`,
      };
    }
    case "timeout":
      return {
        code: StatusCode.INTERNALSERVERERROR,
        text: `${service}: ${f.method ?? "the request"} did not finish within ${f.seconds} s (request_timeout); its worker (pid ${f.pid}) was stopped`,
      };
  }
}

/**
 * The stanza answering `target` with `status` on each of its REQUEST/CONNECT threadTraces
 * (never C's fixed threadTrace 1), or undefined when there is nobody to answer (an
 * undecodable body, or one with no request in it — logged).
 */
export function errorReply(target: ErrorTarget, status: FailureStatus, logger: Logger): OutgoingBusMessage | undefined {
  let to: string;
  let thread: string;
  let xid: string;
  let traces: number[];
  if (target.kind === "caller") {
    ({ to, thread, xid } = target.caller);
    traces = target.caller.threadTraces;
  } else {
    const s = target.stanza;
    to = s.routerFrom || s.from;
    thread = s.thread;
    xid = s.xid;
    try {
      traces = decodeBody(s.body)
        .filter((m) => m.type === "REQUEST" || m.type === "CONNECT")
        .map((m) => m.threadTrace);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      logger.warn(
        `cannot answer ${to} (${status.code} ${status.text}): its message does not decode: ${e.message}`,
        xid,
      );
      return undefined;
    }
  }
  if (traces.length === 0 || to === "") {
    logger.warn(`nobody to answer for a message on thread ${thread} (${status.code} ${status.text}); dropping it`, xid);
    return undefined;
  }
  return { to, thread, xid, body: encodeBody(traces.map((t) => methodException(t, status.code, status.text))) };
}

/**
 * The method a message from the router asks for ("CONNECT" when it opens a session), for
 * failure reports about a drone that never said what it was running; undefined when the
 * body does not decode or holds no request.
 */
export function requestedMethod(s: BusMessage): string | undefined {
  try {
    for (const m of decodeBody(s.body)) {
      if (m.type === "REQUEST") return m.payload.method;
      if (m.type === "CONNECT") return "CONNECT";
    }
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
  return undefined;
}
