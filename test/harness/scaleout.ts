/**
 * Driving a multi-host run the same way behind either router — `add` loads from host D, the
 * listeners' re-registration counters — and reading what it left behind: the router's log
 * (every forward with its xid, every node it dropped) and the agent's per-request records,
 * counted per host.
 */
import { expect } from "bun:test";
import { readFileSync } from "node:fs";
import type { LoadRecord, LoadReply, SessionRecord } from "../../devkit/netns/agent-protocol.ts";
import { hostOf, type ScaleOutStack } from "../../devkit/netns/scaleout.ts";
import { OSRF_LINE_PATTERN } from "../../src/log/format.ts";
import type { PoolStatus } from "../../src/metrics/types.ts";

/** The hosts that serve the service, by their name in {@link ScaleOutStack.host}. */
const SERVING_HOSTS = ["b", "c"] as const;

/** `add(i, 1)` answered `i + 1`. */
export const correct = (r: LoadRecord): boolean => r.outcome === "ok" && r.result === r.i + 1;

/** How host D's callers run `add(i, 1)`: `concurrency` callers (default 8), each waiting `timeout` s (default 10). */
export interface AddLoadOptions {
  concurrency?: number;
  timeout?: number;
  /** Pause of each caller between its requests, ms. */
  pauseMs?: number;
}

/** Runs `total` requests `add(i, 1)` from host D and returns their records. */
export async function addBatch(
  s: ScaleOutStack,
  tag: string,
  total: number,
  o: AddLoadOptions = {},
): Promise<LoadRecord[]> {
  return (await startAdds(s, tag, total, o).reply).records;
}

/**
 * `add(i, 1)` from host D until `s.agent.stopLoad(id)` (or two minutes): the load a host is
 * lost, cut off or restarted under.
 */
export function addLoad(
  s: ScaleOutStack,
  tag: string,
  o: AddLoadOptions = {},
): { id: number; reply: Promise<LoadReply> } {
  return startAdds(s, tag, 1_000_000, o, 120_000);
}

function startAdds(
  s: ScaleOutStack,
  tag: string,
  total: number,
  o: AddLoadOptions,
  deadlineMs?: number,
): { id: number; reply: Promise<LoadReply> } {
  return s.agent.load({
    service: s.service,
    method: "add",
    params: ["$i", 1],
    total,
    concurrency: o.concurrency ?? 8,
    timeout: o.timeout ?? 10,
    tag,
    ...(o.pauseMs === undefined ? {} : { pauseMs: o.pauseMs }),
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
  });
}

/**
 * `count` stateful sessions from host D, each CONNECTed to a drone and calling
 * `add(i, first)` for i = 0 .. `requests` - 1 in it.
 */
export function addSessions(
  s: ScaleOutStack,
  count: number,
  requests: number,
  first: number,
): Promise<SessionRecord[]> {
  return s.agent.sessions({
    service: s.service,
    count,
    requests,
    method: "add",
    params: ["$i", first],
    timeout: 10,
    tag: "sess",
  });
}

/** Whether the router holds a registration of both serving hosts' listeners. */
export async function bothRegistered(s: ScaleOutStack): Promise<boolean> {
  const hosts = new Set((await s.listenerNodes()).map(hostOf));
  return SERVING_HOSTS.every((h) => hosts.has(`host${h}`));
}

/** The registered listener whose JID names `hostname` (e.g. `hostc`), if any. */
export async function listenerOn(s: ScaleOutStack, hostname: string): Promise<string | undefined> {
  return (await s.listenerNodes()).find((j) => hostOf(j) === hostname);
}

/** Whether each serving host has at least `n` idle drones and none still logging in (its `status`). */
export async function dronesIdle(s: ScaleOutStack, n: number): Promise<boolean> {
  for (const h of SERVING_HOSTS) {
    const [pool] = JSON.parse((await s.status(h, ["--all", "--json"])).stdout) as PoolStatus[];
    if (!pool || pool.drones.starting > 0 || pool.drones.idle < n) return false;
  }
  return true;
}

/** Each serving host's re-registrations with the router (bounce, probe, reconnect), from its `status`. */
export async function reregistrations(s: ScaleOutStack): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const h of SERVING_HOSTS) {
    const [pool] = JSON.parse((await s.status(h, ["--all", "--json"])).stdout) as PoolStatus[];
    out[`host${h}`] = pool!.routers[0]!.reregistrations;
  }
  return out;
}

/** What brought each host's listener back to the router since `before`: its probes and bounces. */
export async function reregistrationsSince(
  s: ScaleOutStack,
  before: Record<string, Record<string, number>>,
): Promise<Array<{ host: string; probe: number; bounce: number }>> {
  return Object.entries(await reregistrations(s)).map(([host, after]) => ({
    host,
    probe: after.probe! - before[host]!.probe!,
    bounce: after.bounce! - before[host]!.bounce!,
  }));
}

/** One line of `osrf-prefork router --log-format json`. */
export interface RouterLogLine {
  /** Epoch ms. */
  ts: number;
  level: string;
  xid: string;
  msg: string;
}

export function readRouterLog(file: string): RouterLogLine[] {
  const out: RouterLogLine[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.startsWith("{")) continue;
    const o = JSON.parse(line) as { ts: string; level: string; xid?: string; msg: string };
    out.push({ ts: Date.parse(o.ts), level: o.level, xid: o.xid ?? "", msg: o.msg });
  }
  return out;
}

/** Every forward the router made, by xid, in order: `routing message from <caller> to <node>`. */
export function forwardsByXid(lines: readonly RouterLogLine[]): Map<string, Array<{ ts: number; to: string }>> {
  const out = new Map<string, Array<{ ts: number; to: string }>>();
  for (const l of lines) {
    const m = /^routing message from \S+ to (\S+)$/.exec(l.msg);
    if (!m || !l.xid) continue;
    const list = out.get(l.xid) ?? [];
    list.push({ ts: l.ts, to: m[1]! });
    out.set(l.xid, list);
  }
  return out;
}

/**
 * The real C router's log (OpenSRF line format, messages may span lines), as the same
 * records: `ts` is only to the second there. Its forwards read `Routing message:\nfrom: [a]\nto: [b]`;
 * they are rewritten to our wording so {@link forwardsByXid} reads both.
 */
export function readCRouterLog(file: string): RouterLogLine[] {
  const out: RouterLogLine[] = [];
  const head = /^\S+ \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \[/;
  let entry: string[] = [];
  const flush = () => {
    if (entry.length === 0) return;
    const m = OSRF_LINE_PATTERN.exec(entry.join("\n"));
    entry = [];
    if (!m) return;
    let msg = m[8]!;
    const fwd = /^Routing message:\nfrom: \[(.*)\]\nto: \[(.*)\]$/.exec(msg);
    if (fwd) msg = `routing message from ${fwd[1]} to ${fwd[2]}`;
    out.push({ ts: Date.parse(m[2]!.replace(" ", "T")), level: m[3]!.trim(), xid: m[7]!, msg });
  };
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (head.test(line)) flush();
    entry.push(line);
  }
  flush();
  return out;
}

/**
 * {@link forwardsByXid} for the C router's log, where a bounce's re-send is logged under the
 * bounced message's xid although the C router re-sends the dead node's *last* message (which
 * may be another one): such a forward is credited to the xid of the last message it had
 * forwarded to that node.
 */
export function cRouterForwards(lines: readonly RouterLogLine[]): Map<string, Array<{ ts: number; to: string }>> {
  const out = new Map<string, Array<{ ts: number; to: string }>>();
  const lastXidTo = new Map<string, string>();
  let resend: { logXid: string; xid: string | undefined } | undefined;
  for (const l of lines) {
    const bounce = /^Received network layer error message from (\S+)$/.exec(l.msg);
    if (bounce) {
      resend = { logXid: l.xid, xid: lastXidTo.get(bounce[1]!) };
      continue;
    }
    const m = /^routing message from \S+ to (\S+)$/.exec(l.msg);
    if (!m) continue;
    let xid = l.xid;
    if (resend && l.xid === resend.logXid) {
      xid = resend.xid ?? "";
      resend = undefined;
    }
    if (!xid) continue;
    lastXidTo.set(m[1]!, xid);
    const list = out.get(xid) ?? [];
    list.push({ ts: l.ts, to: m[1]! });
    out.set(xid, list);
  }
  return out;
}

/**
 * Whether the router's last forward of `r` went to `listener` no later than `by` (when the
 * router dropped that listener's host): the request was inside that host, and never bounced
 * back to be sent elsewhere.
 */
export function lastHandedTo(
  forwards: ReadonlyMap<string, ReadonlyArray<{ ts: number; to: string }>>,
  r: LoadRecord,
  listener: string | undefined,
  by: number,
): boolean {
  const f = forwards.get(r.xid)?.at(-1);
  return f !== undefined && f.to === listener && f.ts <= by;
}

/** When the router dropped a node whose JID names `hostname` (the bounce that made it stop). */
export function firstRemoval(lines: readonly RouterLogLine[], hostname: string): RouterLogLine | undefined {
  return lines.find((l) => /^node \S+ of \S+ is unreachable/.test(l.msg) && l.msg.includes(`_listener_${hostname}_`));
}

/**
 * Checks that every one of `records` was answered correctly, and by both serving hosts,
 * each more than 30% of them (the router takes the listeners in turn: about half each).
 * Returns the count per host.
 */
export function expectSpreadOverBothHosts(records: readonly LoadRecord[]): Record<string, number> {
  expect(records.filter((r) => !correct(r))).toEqual([]);
  const hosts = byHost(records);
  expect(Object.keys(hosts).sort()).toEqual(["hostb", "hostc"]);
  for (const n of Object.values(hosts)) expect(n).toBeGreaterThan(records.length * 0.3);
  return hosts;
}

/** Answered requests per host of the drone that answered, e.g. `{ hostb: 120, hostc: 118 }`. */
export function byHost(records: readonly LoadRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    if (r.outcome !== "ok") continue;
    const h = hostOf(r.from) || "(unknown)";
    out[h] = (out[h] ?? 0) + 1;
  }
  return out;
}

/** Records by outcome, e.g. `{ ok: 950, lost: 3, "status 503": 2 }`. */
export function byOutcome(records: readonly LoadRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[r.outcome] = (out[r.outcome] ?? 0) + 1;
  return out;
}
