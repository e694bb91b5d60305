/**
 * Observability of the prefork listener: counters fed by the pool's events, the
 * Prometheus and status pages, the HTTP endpoint serving them, and the client side used
 * by `osrf-prefork status` (and by `osrf-prefork start`, for the socket path).
 */
export {
  type DefaultSocket,
  defaultSocketCandidates,
  defaultStatusSocket,
  NoDefaultSocketError,
  runtimeDirs,
  runtimeSocketPath,
} from "./default-socket.ts";
export { DEFAULT_STATUS_HOST, describeEndpoint, fetchFromEndpoint, statusSocketPath } from "./endpoint.ts";
export { StatusEndpointError, StatusUnreachableError } from "./errors.ts";
export { MetricName, renderMetrics } from "./render.ts";
export {
  type StatusServer,
  type StatusServerOptions,
  startStatusServer,
  startStatusServers,
  statusEndpoints,
} from "./server.ts";
export { buildStatus, renderStatusText } from "./status.ts";
export { renderStatusTable } from "./table.ts";
export type {
  DroneRecord,
  DroneState,
  DroneStatus,
  ExitCause,
  PoolReadings,
  PoolStatus,
  StatusEndpoint,
} from "./types.ts";
