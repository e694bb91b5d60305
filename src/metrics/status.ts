/**
 * The `/status` report: built from {@link PoolReadings} and the backlog depth at the moment
 * it is asked for, as JSON or as plain text laid out like php-fpm's full status page.
 */
import { hostname } from "node:os";
import { rssOfPid } from "./proc.ts";
import type { DroneRecord, DroneState, PoolReadings, PoolStatus, RouterRegistration } from "./types.ts";

/** Where a report's live numbers come from. */
export interface StatusSource {
  metrics: PoolReadings;
  /** Messages waiting for a drone now. */
  backlog(): number;
  /** Listener pid (default this process). */
  pid?: number;
  /** Epoch ms clock (tests). */
  now?: () => number;
  /** RSS of a drone (tests); default reads /proc. */
  rssOf?: (pid: number) => number | undefined;
  /** Host name to report (default this machine's). */
  host?: string;
  /** The listener's registration with each of its routers (default none). */
  routers?: () => readonly RouterRegistration[];
}

/** The current status. */
export function buildStatus(src: StatusSource): PoolStatus {
  const m = src.metrics;
  const now = (src.now ?? Date.now)();
  const rssOf = src.rssOf ?? rssOfPid;
  const counts = m.stateCounts();
  const processes = m.drones().map((d) => ({
    pid: d.pid,
    state: stateOf(d),
    startedAt: d.startedAt,
    requests: d.requests,
    method: d.method ?? null,
    methodAgeMs: d.since === undefined ? null : Math.max(0, now - d.since),
    rssBytes: rssOf(d.pid) ?? d.rssBytes ?? null,
  }));
  return {
    service: m.service,
    host: src.host ?? hostname(),
    pid: src.pid ?? process.pid,
    startTime: new Date(m.startedAt).toISOString(),
    startSince: Math.floor((now - m.startedAt) / 1000),
    accepted: m.accepted,
    requests: m.requests,
    listenQueue: src.backlog(),
    drones: { ...counts, total: processes.length },
    spawns: m.spawns,
    spawnCauses: { ...m.spawnCauses },
    retires: { ...m.retires },
    exits: { ...m.exits },
    overloadRejections: m.overloadRejections,
    bus: m.bus,
    xmppReconnects: m.xmppReconnects,
    routers: (src.routers?.() ?? []).map((r) => ({ ...r, reregistrations: { ...r.reregistrations } })),
    redisReconnects: m.redisReconnects,
    processes,
  };
}

/** Bytes as "12.3 MB" (MiB, as ps and top count); "-" when unknown. */
export function formatBytes(n: number | null): string {
  return n === null ? "-" : `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** Milliseconds as "850 ms" or "12.4 s"; "-" when unknown. */
export function formatAge(ms: number | null): string {
  if (ms === null) return "-";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The non-zero counts as `a=1 b=2` (`kv` between name and count, `joiner` between pairs); "" when none. */
export function listCounts(counts: Readonly<Record<string, number>>, kv = "=", joiner = " "): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}${kv}${n}`)
    .join(joiner);
}

function block(rows: Array<[string, string | number]>): string {
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`).join("\n");
}

/** Plain text in php-fpm's "full status" layout: the pool, then one block per drone. */
export function renderStatusText(s: PoolStatus): string {
  const head = block([
    ["service", s.service],
    ["host", s.host],
    ["listener pid", s.pid],
    ["start time", s.startTime],
    ["start since", s.startSince],
    ["accepted messages", s.accepted],
    ["requests", s.requests],
    ["listen queue", s.listenQueue],
    ["idle drones", s.drones.idle],
    ["busy drones", s.drones.busy],
    ["starting drones", s.drones.starting],
    ["retiring drones", s.drones.retiring],
    ["total drones", s.drones.total],
    ["spawns", s.spawns],
    ["spawn causes", listCounts(s.spawnCauses) || "-"],
    ["retires", listCounts(s.retires) || "-"],
    ["exits", listCounts(s.exits) || "-"],
    ["overload rejections", s.overloadRejections],
    ["bus", s.bus],
    ["xmpp reconnects", s.xmppReconnects],
    ["routers", describeRouters(s.routers) || "-"],
    ["redis reconnects", s.redisReconnects],
  ]);
  const drones = s.processes.map((p) =>
    block([
      ["pid", p.pid],
      ["state", p.state],
      ["start time", new Date(p.startedAt).toISOString()],
      ["requests", p.requests],
      ["method", p.method ?? "-"],
      ["method age", formatAge(p.methodAgeMs)],
      ["rss", formatBytes(p.rssBytes)],
    ]),
  );
  return `${[head, ...drones].join("\n\n************************\n")}\n`;
}

/**
 * `router@d/router registered (re-registered: probe 1)` for each router, `; `-separated;
 * "" when there is none.
 */
export function describeRouters(routers: readonly RouterRegistration[]): string {
  return routers
    .map((r) => {
      const again = listCounts(r.reregistrations, " ", ", ");
      return `${r.router} ${r.registered ? "registered" : "NOT registered"}${again ? ` (re-registered: ${again})` : ""}`;
    })
    .join("; ");
}

/** A drone's state from what it and the pool said. */
export function stateOf(d: DroneRecord): DroneState {
  if (d.retiring) return "retiring";
  if (!d.ready) return "starting";
  return d.busy ? "busy" : "idle";
}
