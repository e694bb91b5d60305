/**
 * Errors of the status endpoint.
 */
import { PreforkError } from "../prefork/errors.ts";

/** The status endpoint cannot listen where it was told to (port taken, bad socket path, …). */
export class StatusEndpointError extends PreforkError {
  constructor(message: string, service: string) {
    super(message, { service });
    this.name = "StatusEndpointError";
  }
}

/** The status endpoint of a listener could not be read (`osrf-prefork status`). */
export class StatusUnreachableError extends Error {
  override readonly name = "StatusUnreachableError";
}
