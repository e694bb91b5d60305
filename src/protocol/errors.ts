/**
 * The one error type the protocol layer throws for bad input.
 */

/**
 * An osrfMessage body (or one of its parts) does not have the shape OpenSRF defines.
 *
 * `field` is a path into the wire form, e.g. `body[0].__p.payload.__p.method`, so a log line
 * says exactly which part of which message was wrong.
 */
export class ProtocolError extends Error {
  /** Path of the offending part, e.g. `body[0].__p.type`. */
  readonly field: string;
  /** What was wrong with it, e.g. `expected a string, got 5`. */
  readonly reason: string;

  /**
   * @param field Path of the offending part of the body.
   * @param reason What was expected and what was found.
   * @param options Standard error options (`cause`).
   */
  constructor(field: string, reason: string, options?: { cause?: unknown }) {
    super(`bad osrfMessage at ${field}: ${reason}`, options);
    this.name = "ProtocolError";
    this.field = field;
    this.reason = reason;
  }
}

// Long enough to recognise a value, short enough that a huge hostile string cannot blow up logs.
const MAX_SHOWN = 40;

/**
 * Short description of a wire value for error messages: strings quoted (and truncated),
 * numbers, booleans and null as written, containers by kind, `undefined` as "nothing".
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    const shown = value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return typeof value;
}
