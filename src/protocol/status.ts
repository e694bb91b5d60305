/**
 * OpenSRF status codes and the exact texts the C library sends with them.
 */

/** Every status code OpenSRF defines (osrf_app_session.h / Perl OpenSRF::DomainObject). */
export const StatusCode = {
  CONTINUE: 100,
  OK: 200,
  ACCEPTED: 202,
  NOCONTENT: 204,
  COMPLETE: 205,
  PARTIAL: 206,
  REDIRECTED: 307,
  BADREQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOTFOUND: 404,
  NOTALLOWED: 405,
  TIMEOUT: 408,
  EXPFAILED: 417,
  INTERNALSERVERERROR: 500,
  NOTIMPLEMENTED: 501,
  SERVICEUNAVAILABLE: 503,
  VERSIONNOTSUPPORTED: 505,
} as const;

export type StatusCodeValue = (typeof StatusCode)[keyof typeof StatusCode];

/** Standard reason phrases, for messages that have no more specific text. */
export const StatusText: Readonly<Record<number, string>> = {
  100: "Continue",
  200: "OK",
  202: "Accepted",
  204: "No Content",
  205: "Complete",
  206: "Partial",
  307: "Redirected",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Not Allowed",
  408: "Timeout",
  417: "Expectation Failed",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "Version Not Supported",
};

/** Class hints of STATUS payloads used by OpenSRF. */
export const StatusClass = {
  CONNECT: "osrfConnectStatus",
  METHOD_EXCEPTION: "osrfMethodException",
} as const;

/** Exact status texts real peers send and expect (from the C library and the seed). */
export const Texts = {
  requestComplete: "Request Complete",
  connectionSuccessful: "Connection Successful",
  disconnectedOnTimeout: "Disconnected on timeout",
  partialResponse: "Partial Response",
  partialFinalized: "Partial Response Finalized",
  backlogFull: "Service unavailable: no available children and backlog queue at limit",
  methodNotFound: (method: string, service: string) => `Method [${method}] not found for service ${service}`,
  notEnoughParams: (method: string, service: string) => `Not enough params for method ${method} / service ${service}`,
  unknownServerError: "An unknown server error occurred",
} as const;
