/**
 * The `router` pseudo-service both routers answer themselves (requests to
 * `router@<domain>/router` on XMPP, `opensrf:service:_:_:router` on Redis): CONNECT is
 * accepted, the `opensrf.router.info.*` methods answered from the table, as C does.
 */
import type { Logger } from "../log/types.ts";
import { decodeBody, encodeBody } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { complete, connectOk, methodException } from "../protocol/messages.ts";
import { StatusCode } from "../protocol/status.ts";
import type { OsrfMessage } from "../protocol/types.ts";
import { answerInfoMethod, type RouterTable } from "./info-methods.ts";

/**
 * The replies to one message for the router itself, each its own transport message, in
 * order: for a REQUEST of a known method a RESULT (no status text, statusCode 0, as C) and
 * then STATUS 205 as a second message, as C sends them; an unknown method gets
 * osrfMethodException 404 "Router method not found". A body that does not decode is logged
 * and gets none.
 * @param from Who asked (for the log line).
 */
export function routerApiReplies(table: RouterTable, body: string, from: string, log: Logger, xid: string): string[] {
  let msgs: OsrfMessage[];
  try {
    msgs = decodeBody(body);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    log.warn(`bad message body from ${from}: ${e.message}`, xid);
    return [];
  }
  const out: string[] = [];
  for (const m of msgs) {
    const header = { locale: m.locale, apiLevel: m.apiLevel };
    if (m.type === "CONNECT") {
      out.push(encodeBody([connectOk(m.threadTrace, header)]));
    } else if (m.type === "REQUEST") {
      const answer = answerInfoMethod(table, m.payload.method, m.payload.params);
      log.info(`Router received app request: ${m.payload.method}`, xid);
      if (!answer.found) {
        out.push(encodeBody([methodException(m.threadTrace, StatusCode.NOTFOUND, "Router method not found")]));
        continue;
      }
      const result: OsrfMessage = {
        type: "RESULT",
        threadTrace: m.threadTrace,
        ...(m.locale ? { locale: m.locale } : {}),
        apiLevel: m.apiLevel,
        payload: { className: "osrfResult", status: null, statusCode: 0, content: answer.result },
      };
      out.push(encodeBody([result]), encodeBody([complete(m.threadTrace, header)]));
    }
  }
  return out;
}
