/**
 * Errors service authors throw or catch.
 */

/**
 * Throw from a handler to fail the request with a chosen status: the caller receives
 * STATUS `osrfMethodException` with exactly this code and text (no "Request Complete").
 *
 * @example
 * throw new MethodException(400, "add_item needs a CONNECT session");
 */
export class MethodException extends Error {
  /** The status code sent, e.g. 400, 403, 404. */
  readonly statusCode: number;

  /**
   * @param statusCode An OpenSRF status code (an integer, 400–599 for failures).
   * @param message The status text the caller sees.
   */
  constructor(statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    if (!Number.isSafeInteger(statusCode) || statusCode < 0) {
      throw new RangeError(`MethodException status code must be a non-negative integer, got ${statusCode}`);
    }
    this.name = "MethodException";
    this.statusCode = statusCode;
  }
}

/**
 * A result could not be sent because it is not JSON: it holds a BigInt, a function, a
 * symbol, a Map or Set, a cycle, or a non-finite number. Thrown by `ctx.respond`, and
 * reported to the caller as an exception naming the method when not caught.
 */
export class ResultNotSerializableError extends TypeError {
  /** The api_name whose result was refused. */
  readonly method: string;
  /** What was wrong and where, e.g. `a BigInt at [2].price`. */
  readonly reason: string;

  constructor(method: string, reason: string) {
    super(`Result of method [${method}] is not JSON-serializable: ${reason}`);
    this.name = "ResultNotSerializableError";
    this.method = method;
    this.reason = reason;
  }
}
