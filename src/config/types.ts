/**
 * Configuration shapes read from opensrf_core.xml, srfsh.xml and opensrf.xml.
 */
import type { BusKind } from "../bus/types.ts";
import type { LogConfig } from "../log/types.ts";

export type { LogConfig };

/** A router a client/listener talks to (from `/config/opensrf/routers/router`). */
export interface RouterTarget {
  /** Router account name, e.g. "router". */
  name: string;
  /** XMPP domain of that router. */
  domain: string;
  /** When present, only these services register with this router. */
  services?: string[];
}

/**
 * `/config/opensrf` (or `/srfsh`): how a client, listener or drone connects. The same keys
 * serve both buses: on Redis `domain` is also the Redis host, `username`/`passwd` the ACL
 * account and `port` the Redis port.
 */
export interface ClientConfig extends LogConfig {
  /**
   * Which bus: `<bus>` (our addition); absent means XMPP. The command line and `OSRF_BUS`
   * override it (`withBus()` of src/config/bus.ts).
   */
  bus?: BusKind;
  domain: string;
  username: string;
  /** Never logged. */
  passwd: string;
  /** `<port>`, else the chosen bus's default (5222 XMPP, 6379 Redis). */
  port: number;
  /** True when `<port>` was in the file (so a bus chosen later keeps it). */
  portFromFile?: boolean;
  /**
   * Host to connect to. OpenSRF connects to the domain name itself; this optional
   * `<server>` element (our addition) overrides that, e.g. 127.0.0.1.
   */
  server: string;
  routerName: string;
  routers: RouterTarget[];
  /** Bytes above which a sent message is logged with a warning. */
  msgSizeWarn: number;
  /** Our addition: refuse to send/accept stanzas larger than this (bytes). */
  maxStanzaSize: number;
  settingsConfig?: string;
  /**
   * `<client>true</client>` (srfsh.xml, gateway): this process originates requests, so
   * it creates the log xid instead of copying the caller's.
   */
  client?: boolean;
}

/** `/config/routers/router/transport`. */
export interface RouterTransport {
  server: string;
  /** `<port>`, else 5222; on Redis 6379 when the file has none ({@link portFromFile}). */
  port: number;
  /** True when `<port>` was in the file. */
  portFromFile?: boolean;
  username: string;
  /** Never logged. */
  password: string;
  resource: string;
  connectTimeout: number;
  maxReconnectAttempts: number;
}

/** One `/config/routers/router`. */
export interface RouterConfig extends LogConfig {
  /** Optional `<name>`; the C router uses the transport username. */
  name?: string;
  trustedServers: string[];
  trustedClients: string[];
  transport: RouterTransport;
  /** Host to connect to (our addition, defaults to transport.server). */
  host: string;
  /**
   * `stall_timeout` (ours, Redis only): seconds a forwarded message may wait unread in one
   * instance's service queue before the router fails that instance over (default 5).
   */
  stallTimeout: number;
}

/** The whole of opensrf_core.xml that we use. */
export interface CoreConfig {
  /** File it came from, for error messages. */
  file: string;
  opensrf: ClientConfig;
  routers: RouterConfig[];
  /** `/config/shared/log_protect/match_string`. */
  logProtect: string[];
}

/** A settings tree converted from opensrf.xml the way the settings server does. */
export type SettingsTree = { [key: string]: SettingsValue };
export type SettingsValue = string | number | SettingsTree | SettingsValue[];

/**
 * Prefork settings for one service, read from the host config (`/apps/<service>/…`).
 * The first seven are OpenSRF's own keys; the rest are additions of this project, read
 * from `/apps/<service>/unix_config/<snake_case_name>`.
 */
export interface PreforkSettings {
  /** `unix_config/max_requests`: requests a drone serves before it exits (C default 1000). */
  maxRequests: number;
  /** `unix_config/min_children`: drones kept alive (C default 3). */
  minChildren: number;
  /** `unix_config/max_children`: drone ceiling (C default 10, clamped to 256). */
  maxChildren: number;
  /** `unix_config/max_backlog_queue`: messages queued while all drones are busy (default 1000; 0 = none). */
  maxBacklogQueue: number;
  /** `/apps/<service>/keepalive`: seconds a stateful session may stay idle (default 5). */
  keepalive: number;
  /**
   * `unix_config/min_spare_children` (Perl): keep at least this many idle drones while under
   * maxChildren, starting one in the first second of a shortage and twice as many each
   * further second, up to 32 a second. 0 (default) = off.
   */
  minSpareChildren: number;
  /**
   * `unix_config/max_spare_children` (Perl): stop idle drones, one per second at most, while
   * more than this many have been idle for the whole {@link spareGrace} and more than
   * minChildren exist. 0 (default) = off. Like Perl, a value not above minSpareChildren
   * becomes minSpareChildren + 1.
   */
  maxSpareChildren: number;
  /**
   * `unix_config/spare_grace`: seconds over which the fewest idle drones must have exceeded
   * maxSpareChildren before any is retired, and that a drone must have been idle itself
   * (default 10, php-fpm's process_idle_timeout; 0 = judge the last second only).
   */
  spareGrace: number;
  /** `unix_config/request_timeout`: seconds one request may run before its drone is replaced; 0 (default) = none. */
  requestTimeout: number;
  /** `unix_config/max_memory_mb`: a drone above this private memory (MB) exits after its request; 0 (default) = none. */
  maxMemoryMb: number;
  /**
   * `unix_config/max_requests_jitter`: each drone's max_requests is lowered by up to this
   * fraction (default 0.1, below 1) so drones do not all restart together.
   */
  maxRequestsJitter: number;
  /** `unix_config/shutdown_timeout`: seconds a graceful stop waits for busy drones (default 30). */
  shutdownTimeout: number;
  /**
   * `unix_config/max_chunk_size`: bytes above which a result is sent as partial chunks
   * (default 51200, C's OSRF_MSG_CHUNK_SIZE; 0 = never chunk).
   */
  maxChunkSize: number;
  /**
   * `unix_config/max_bundle_size`: bytes up to which replies are bundled in one message
   * (default 25600, C's OSRF_MSG_BUNDLE_SIZE; 0 = no bundling).
   */
  maxBundleSize: number;
  /**
   * `unix_config/crash_backoff_max`: longest delay in seconds between respawns of drones
   * that keep dying at start (default 60).
   */
  crashBackoffMax: number;
  /**
   * `unix_config/register_interval`: seconds between the listener's periodic re-registrations
   * with its routers, so a router that restarted (and forgot its table) gets it back;
   * 0 = never (default 30). Registrations that bounce are re-sent within seconds regardless.
   */
  registerInterval: number;
  /**
   * `unix_config/router_probe_interval`: seconds between the listener's registration probes
   * of each router — one small iq to the router's class JID, which tells a router that
   * restarted (and forgot the listener) within seconds; 0 = never (default 1).
   */
  routerProbeInterval: number;
  /**
   * `unix_config/status_port`: TCP port on 127.0.0.1 of the listener's status and metrics
   * endpoint (`/status`, `/metrics`); 0 (default) = off.
   */
  statusPort: number;
  /**
   * `unix_config/status_socket`: unix socket path of that endpoint; "" (default) = the
   * default socket (`<pid dir>/<service>.status.sock`, else the per-user runtime dir).
   */
  statusSocket: string;
  /** `dirs/pid` of the host config (default osrf_control's): where the default status socket goes. */
  pidDir: string;
  /**
   * `/apps/<service>/max_requests` (top level, Perl only): requests allowed in one stateful
   * session before Perl disconnects it. Not the drone limit; C ignores it. Undefined if unset.
   */
  maxSessionRequests?: number;
  /**
   * One-line notes for the log: values corrected rather than rejected (max_children clamped
   * to 256, max_spare_children raised) and defaults assumed for OpenSRF's own keys (C warns
   * about those too).
   */
  warnings: string[];
}
