/**
 * Small constructors for the osrfMessages servers and clients send, with the exact class
 * names, codes and texts real OpenSRF peers use.
 */
import { StatusClass, StatusCode, Texts } from "./status.ts";
import type {
  ConnectMessage,
  DisconnectMessage,
  JsonValue,
  MessageHeader,
  RequestMessage,
  ResultMessage,
  StatusMessage,
} from "./types.ts";

/** Header fields a caller may set; omitted ones get OpenSRF's defaults. */
export interface HeaderOptions {
  /** Defaults to "en-US", as the C library does. */
  locale?: string;
  tz?: string;
  ingress?: string;
  /** Defaults to 1. */
  apiLevel?: number;
}

/** Default locale of the C library (`default_locale`). */
export const DEFAULT_LOCALE = "en-US";

/**
 * Builds a message header: threadTrace plus defaults for anything not given.
 * tz and ingress are only present when set, so they are only encoded when set.
 */
export function makeHeader(threadTrace: number, header: HeaderOptions = {}): MessageHeader {
  const h: MessageHeader = {
    threadTrace,
    locale: header.locale ?? DEFAULT_LOCALE,
    apiLevel: header.apiLevel ?? 1,
  };
  if (header.tz !== undefined) h.tz = header.tz;
  if (header.ingress !== undefined) h.ingress = header.ingress;
  return h;
}

/** REQUEST calling `method` with `params`. */
export function request(
  threadTrace: number,
  method: string,
  params: JsonValue[],
  header?: HeaderOptions,
): RequestMessage {
  return { ...makeHeader(threadTrace, header), type: "REQUEST", payload: { method, params } };
}

/** RESULT `osrfResult` "OK" 200 carrying `content`. */
export function result(threadTrace: number, content: JsonValue, header?: HeaderOptions): ResultMessage {
  return {
    ...makeHeader(threadTrace, header),
    type: "RESULT",
    payload: { className: "osrfResult", status: "OK", statusCode: StatusCode.OK, content },
  };
}

/** STATUS of any class, e.g. `status(1, "osrfConnectStatus", 205, "Request Complete")`. */
export function status(
  threadTrace: number,
  className: string,
  code: number,
  text: string,
  header?: HeaderOptions,
): StatusMessage {
  return {
    ...makeHeader(threadTrace, header),
    type: "STATUS",
    payload: { className, status: text, statusCode: code },
  };
}

/** STATUS `osrfConnectStatus` 205 "Request Complete": the end of a request's replies. */
export function complete(threadTrace: number, header?: HeaderOptions): StatusMessage {
  return status(threadTrace, StatusClass.CONNECT, StatusCode.COMPLETE, Texts.requestComplete, header);
}

/** STATUS `osrfConnectStatus` 200 "Connection Successful": the answer to CONNECT. */
export function connectOk(threadTrace: number, header?: HeaderOptions): StatusMessage {
  return status(threadTrace, StatusClass.CONNECT, StatusCode.OK, Texts.connectionSuccessful, header);
}

/** CONNECT, opening a stateful session (threadTrace is usually 0). */
export function connect(threadTrace = 0, header?: HeaderOptions): ConnectMessage {
  return { ...makeHeader(threadTrace, header), type: "CONNECT" };
}

/** DISCONNECT, ending a stateful session; it gets no reply. */
export function disconnect(threadTrace: number, header?: HeaderOptions): DisconnectMessage {
  return { ...makeHeader(threadTrace, header), type: "DISCONNECT" };
}

/**
 * STATUS `osrfMethodException`: a failed request. C uses code 404 for every method error;
 * no 205 follows it.
 */
export function methodException(
  threadTrace: number,
  code: number,
  text: string,
  header?: HeaderOptions,
): StatusMessage {
  return status(threadTrace, StatusClass.METHOD_EXCEPTION, code, text, header);
}
