/**
 * How a request fails: an error status, no reply in time, or a message that could not be delivered.
 */
import type { StatusPayload } from "../protocol/types.ts";

/** Where a request went, for error messages. */
export interface RequestContext {
  service: string;
  method: string;
  thread: string;
  xid: string;
}

/** The server answered with a non-2xx STATUS (e.g. 404 method not found, 503 overload). */
export class RequestError extends Error {
  readonly statusCode: number;
  readonly statusText: string;
  readonly className: string;
  constructor(
    status: StatusPayload,
    readonly context: RequestContext,
  ) {
    super(`${context.service} ${context.method}: ${status.className} ${status.statusCode}: ${status.status}`);
    this.name = "RequestError";
    this.statusCode = status.statusCode;
    this.statusText = status.status;
    this.className = status.className;
  }
}

/** No reply within the per-call timeout. */
export class TimeoutError extends Error {
  constructor(
    readonly seconds: number,
    readonly context: RequestContext,
  ) {
    super(
      `${context.service} ${context.method}: no reply within ${seconds} s (thread ${context.thread}, xid ${context.xid})`,
    );
    this.name = "TimeoutError";
  }
}

/** The message could not be delivered (e.g. the service has no listener registered with the router). */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly condition: string,
    readonly context: RequestContext,
  ) {
    super(message);
    this.name = "DeliveryError";
  }
}
