/**
 * Errors of the status endpoint.
 */
/** The status endpoint cannot listen where it was told to (port taken, bad socket path, …). */
export class StatusEndpointError extends Error {
  override readonly name = "StatusEndpointError";
  constructor(
    message: string,
    /** The service whose listener wanted the endpoint. */
    readonly service: string,
  ) {
    super(message);
  }
}

/** The status endpoint of a listener could not be read (`osrf-prefork status`). */
export class StatusUnreachableError extends Error {
  override readonly name = "StatusUnreachableError";
}
