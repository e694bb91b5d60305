/**
 * `osrf-prefork status` output: a summary line or two per service and an aligned table of
 * its drones.
 */
import { describeRouters, formatAge, formatBytes, listCounts } from "./status.ts";
import type { PoolStatus } from "./types.ts";

/** Cells laid out in columns; `right` marks columns aligned right (numbers). */
export function alignColumns(rows: readonly (readonly string[])[], right: ReadonlySet<number> = new Set()): string[] {
  const widths: number[] = [];
  for (const row of rows) for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  return rows.map((row) =>
    row
      .map((cell, i) =>
        right.has(i) ? cell.padStart(widths[i]!) : i === row.length - 1 ? cell : cell.padEnd(widths[i]!),
      )
      .join("  ")
      .trimEnd(),
  );
}

/** Seconds as "3d 4h", "2h 5m", "4m 12s" or "9s". */
export function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

const inParens = (text: string) => (text ? ` (${text})` : "");

/** One service's status as readable text (ends with a newline). */
export function renderStatusTable(s: PoolStatus): string {
  const d = s.drones;
  const retired = Object.values(s.retires).reduce((a, b) => a + b, 0);
  const lines = [
    `${s.service}${s.host ? ` on ${s.host}` : ""}  (listener pid ${s.pid}, up ${formatUptime(s.startSince)} since ${s.startTime})`,
    `  accepted ${s.accepted}, requests ${s.requests}, listen queue ${s.listenQueue}, ` +
      `overload rejections ${s.overloadRejections}, ${reconnects(s)}`,
    `  drones ${d.total}: ${d.idle} idle, ${d.busy} busy, ${d.starting} starting, ${d.retiring} retiring; ` +
      `spawned ${s.spawns}${inParens(listCounts(s.spawnCauses, " ", ", "))}, ` +
      `retired ${retired}${inParens(listCounts(s.retires, " ", ", "))}, ` +
      `exited ${listCounts(s.exits, " ", ", ") || "0"}`,
  ];
  const routers = describeRouters(s.routers ?? []);
  if (routers) lines.push(`  routers: ${routers}`);
  const rows = [
    ["PID", "STATE", "REQUESTS", "RSS", "AGE", "METHOD"],
    ...s.processes.map((p) => [
      String(p.pid),
      p.state,
      String(p.requests),
      formatBytes(p.rssBytes),
      formatAge(p.methodAgeMs),
      p.method ?? "-",
    ]),
  ];
  lines.push("", ...alignColumns(rows, new Set([0, 2, 3, 4])).map((l) => `  ${l}`));
  return `${lines.join("\n")}\n`;
}

/** "xmpp reconnects 0" or "redis reconnects 2": the counter of the bus the listener is on. */
function reconnects(s: PoolStatus): string {
  return s.bus === "redis" ? `redis reconnects ${s.redisReconnects}` : `xmpp reconnects ${s.xmppReconnects}`;
}
