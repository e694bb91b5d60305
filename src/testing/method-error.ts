/**
 * What a test sees when a call fails: the STATUS the service sent, as a typed error.
 */
import type { StatusPayload } from "../protocol/types.ts";

/**
 * A call ended with an exception status, exactly as a real caller receives it: e.g.
 * 404 "Method [x] not found for service S", 404 "Not enough params for method M / service S",
 * the code and text of a {@link MethodException} the handler threw, or 500
 * " *** Call to [M] failed …" for any other throw.
 */
export class MethodError extends Error {
  /** The status code, e.g. 400, 404, 500. */
  readonly statusCode: number;
  /** The status text, e.g. `Method [x] not found for service S`. */
  readonly status: string;
  /** The class of the status, `osrfMethodException` for failed requests. */
  readonly className: string;
  /** The method called (`.atomic` included). */
  readonly method: string;
  /** The service called. */
  readonly service: string;

  constructor(payload: StatusPayload, where: { service: string; method: string }) {
    super(`${where.service} ${where.method}: ${payload.statusCode} ${payload.status}`);
    this.name = "MethodError";
    this.statusCode = payload.statusCode;
    this.status = payload.status;
    this.className = payload.className;
    this.method = where.method;
    this.service = where.service;
  }
}
