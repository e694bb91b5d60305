/**
 * Shapes of the OpenSRF message layer (the JSON inside `<body>`).
 *
 * On the wire a message is `{"__c":"osrfMessage","__p":{…}}`; here it is a plain,
 * discriminated object so the compiler checks every use. Only the codec
 * (`codec.ts`) knows the class-hinted form.
 */

/** The five osrfMessage types of OpenSRF 3.x. */
export type MessageType = "CONNECT" | "DISCONNECT" | "REQUEST" | "RESULT" | "STATUS";

/** A JSON value as it travels in params and results (class hints are kept as-is). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Fields every osrfMessage carries. */
export interface MessageHeader {
  /** Request id within the session; a string of digits on the wire, a number here. */
  threadTrace: number;
  /** e.g. "en-US"; absent when the peer sent none. */
  locale?: string;
  /** Time zone name, optional (Perl sends null). */
  tz?: string;
  /** Who originated the request, e.g. "srfsh"; optional. */
  ingress?: string;
  /** API level; 1 for every OpenSRF 3.x peer. */
  apiLevel: number;
}

/** REQUEST payload: `osrfMethod`. */
export interface MethodCall {
  method: string;
  params: JsonValue[];
}

/** Class hints a RESULT payload may carry. */
export type ResultClass = "osrfResult" | "osrfResultPartial" | "osrfResultPartialComplete";

/** RESULT payload. `status` is null in the router's replies (see sample E). */
export interface ResultPayload {
  className: ResultClass;
  status: string | null;
  statusCode: number;
  content: JsonValue;
}

/** STATUS payload: class name (e.g. `osrfConnectStatus`, `osrfMethodException`), text and code. */
export interface StatusPayload {
  className: string;
  status: string;
  statusCode: number;
}

export type ConnectMessage = MessageHeader & { type: "CONNECT" };
export type DisconnectMessage = MessageHeader & { type: "DISCONNECT" };
export type RequestMessage = MessageHeader & { type: "REQUEST"; payload: MethodCall };
export type ResultMessage = MessageHeader & { type: "RESULT"; payload: ResultPayload };
export type StatusMessage = MessageHeader & { type: "STATUS"; payload: StatusPayload };

/** One osrfMessage. */
export type OsrfMessage = ConnectMessage | DisconnectMessage | RequestMessage | ResultMessage | StatusMessage;
