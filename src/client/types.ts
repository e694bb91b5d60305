/**
 * The client API's shapes: request options, pending requests, sessions, and the OsrfClient
 * interface services get.
 */
import type { JsonValue } from "../protocol/types.ts";

/** Options for one request. */
export interface RequestOptions {
  /** Seconds to wait for each reply before failing with a `TimeoutError`; default 60. */
  timeout?: number;
  /** Transaction id for logs; a new one is made when absent. Drones pass theirs on. */
  xid?: string;
  locale?: string;
  tz?: string;
  ingress?: string;
}

/**
 * A pending request: iterate it to receive each result as it arrives;
 * `collect()` waits for all of them. Fails with `RequestError` (non-2xx status),
 * `TransportError` (bounce, e.g. service not registered) or `TimeoutError`.
 */
export interface PendingRequest extends AsyncIterable<JsonValue> {
  /** All results once the request completes. */
  collect(): Promise<JsonValue[]>;
  /** The first result, or undefined when the method returned none. */
  first(): Promise<JsonValue | undefined>;
}

/** A stateful (CONNECT) session pinned to one worker of a service. */
export interface ClientSession {
  readonly service: string;
  /** The session's thread. */
  readonly thread: string;
  /** Where requests go: the drone's JID once connected, the router's before. */
  readonly remote: string;
  /** True between a successful connect() and disconnect()/timeout. */
  readonly connected: boolean;
  connect(opts?: RequestOptions): Promise<void>;
  request(method: string, params?: JsonValue[], opts?: RequestOptions): PendingRequest;
  /** Sends DISCONNECT (no reply expected). */
  disconnect(): void;
}

/** The OpenSRF client used by `osrf-prefork request` and by handlers (`ctx.call`). */
export interface OsrfClient {
  /** Stateless request to `router@<domain>/<service>`. */
  request(service: string, method: string, params?: JsonValue[], opts?: RequestOptions): PendingRequest;
  /** A new stateful session (not yet connected). */
  session(service: string): ClientSession;
  close(): Promise<void>;
}
