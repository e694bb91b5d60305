/**
 * Reading what a multi-host run left behind: our router's JSON log (every forward with its
 * xid, every node it dropped) and the agent's per-request records, counted per host.
 */
import { readFileSync } from "node:fs";
import type { LoadRecord } from "../../devkit/netns/agent-protocol.ts";
import { hostOf } from "../../devkit/netns/scaleout.ts";
import { OSRF_LINE_PATTERN } from "../../src/log/format.ts";

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

/** When the router dropped a node whose JID names `hostname` (the bounce that made it stop). */
export function firstRemoval(lines: readonly RouterLogLine[], hostname: string): RouterLogLine | undefined {
  return lines.find((l) => /^node \S+ of \S+ is unreachable/.test(l.msg) && l.msg.includes(`_listener_${hostname}_`));
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
