/**
 * `/metrics` of one listener. No `service` label on each sample: one endpoint serves one
 * listener, and `osrf_prefork_info` names it (join on the scrape target's labels). Every
 * sample carries `host`, though: endpoints listen on loopback only, so what scrapes several
 * hosts sees the same target address on each, and the host keeps their series apart (and
 * lets a query sum them across hosts).
 */
import { VERSION } from "../version.ts";
import { PrometheusText, type Sample } from "./prometheus.ts";
import type { PoolReadings, RouterRegistration } from "./types.ts";
import { DRONE_STATES, REREGISTRATION_CAUSES } from "./types.ts";

/** Metric family names, for dashboards and tests. */
export const MetricName = {
  info: "osrf_prefork_info",
  processStart: "process_start_time_seconds",
  drones: "osrf_prefork_drones",
  spawns: "osrf_prefork_drone_spawns_total",
  retires: "osrf_prefork_drone_retires_total",
  exits: "osrf_prefork_drone_exits_total",
  accepted: "osrf_prefork_messages_accepted_total",
  requests: "osrf_prefork_requests_total",
  duration: "osrf_prefork_request_duration_seconds",
  backlog: "osrf_prefork_backlog",
  overload: "osrf_prefork_overload_rejections_total",
  lost: "osrf_prefork_lost_requests_total",
  reconnects: "osrf_prefork_xmpp_reconnects_total",
  routerRegistered: "osrf_prefork_router_registered",
  reregistrations: "osrf_prefork_router_reregistrations_total",
  redisReconnects: "osrf_prefork_redis_reconnects_total",
} as const;

/** What a scrape reads. */
export interface MetricsSource {
  metrics: PoolReadings;
  /** Messages waiting for a drone now. */
  backlog(): number;
  /** Epoch seconds the process started (default from `performance.timeOrigin`). */
  processStart?: number;
  /** This machine's host name: the `host` label of every sample (none when absent). */
  host?: string;
  /** The listener's registration with each of its routers. */
  routers?: () => readonly RouterRegistration[];
}

/** The Prometheus text of one listener. */
export function renderMetrics(src: MetricsSource): string {
  const m = src.metrics;
  const states = m.stateCounts();
  const requests: Sample[] = [];
  for (const [method, codes] of m.byMethod) {
    for (const [status, value] of codes) requests.push({ labels: { method, status: String(status) }, value });
  }
  const routers = src.routers?.() ?? [];
  const t = new PrometheusText(src.host ? { host: src.host } : {})
    .family(MetricName.info, "gauge", "The service this listener serves; always 1", [
      { labels: { service: m.service, version: VERSION }, value: 1 },
    ])
    .family(MetricName.processStart, "gauge", "Start time of the listener process since the Unix epoch, in seconds", [
      { value: src.processStart ?? Math.floor(performance.timeOrigin / 1000) },
    ])
    .family(
      MetricName.drones,
      "gauge",
      "Drone processes by state (starting, idle, busy, retiring)",
      DRONE_STATES.map((state) => ({ labels: { state }, value: states[state] })),
    )
    // By cause; the sum over causes is the total this family had before it was labelled.
    .family(
      MetricName.spawns,
      "counter",
      "Drone processes started, by cause (min_children, demand, spare, replace)",
      Object.entries(m.spawnCauses).map(([cause, value]) => ({ labels: { cause }, value })),
    )
    .family(
      MetricName.retires,
      "counter",
      "Drones the pool told to stop, by cause (spare, reload, shutdown)",
      Object.entries(m.retires).map(([cause, value]) => ({ labels: { cause }, value })),
    )
    .family(
      MetricName.exits,
      "counter",
      "Drone processes ended, by cause",
      Object.entries(m.exits).map(([cause, value]) => ({ labels: { cause }, value })),
    )
    .family(MetricName.accepted, "counter", "Messages from the routers handed to drones", [{ value: m.accepted }])
    .family(
      MetricName.requests,
      "counter",
      "Requests finished by drones, by method and final OpenSRF status code",
      requests,
    )
    .histogram(
      MetricName.duration,
      "Time a drone spent serving a request, until its last reply was sent",
      m.durations(),
    )
    .family(MetricName.backlog, "gauge", "Messages waiting for a free drone", [{ value: src.backlog() }])
    .family(MetricName.overload, "counter", "Messages answered with 503 because the backlog was full", [
      { value: m.overloadRejections },
    ])
    .family(
      MetricName.lost,
      "counter",
      "Callers answered with an error because their drone died, timed out or the server stopped",
      Object.entries(m.lost).map(([reason, value]) => ({ labels: { reason }, value })),
    )
    .family(MetricName.reconnects, "counter", "Times the listener's XMPP connection came back after a loss", [
      { value: m.xmppReconnects },
    ])
    .family(
      MetricName.routerRegistered,
      "gauge",
      "1 while registered with the router and nothing says it lost us, else 0",
      routers.map((r) => ({ labels: { router: r.router }, value: r.registered ? 1 : 0 })),
    )
    .family(
      MetricName.reregistrations,
      "counter",
      "Registrations sent again because the router lost us, by how we learned it (bounce, probe, reconnect)",
      routers.flatMap((r) =>
        REREGISTRATION_CAUSES.map((cause) => ({
          labels: { router: r.router, cause },
          value: r.reregistrations[cause],
        })),
      ),
    )
    .family(MetricName.redisReconnects, "counter", "Times the listener's Redis connections came back after a loss", [
      { value: m.redisReconnects },
    ]);
  return t.toString();
}
