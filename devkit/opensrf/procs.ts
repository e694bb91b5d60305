/**
 * Linux /proc helpers for the real OpenSRF processes, which daemonize (setsid, reparented to
 * init), so neither process groups nor our child handles reach them. A process is identified
 * by pid plus start time, so a recycled pid is never signalled.
 */
import { readdirSync } from "node:fs";
import { readProc } from "../load.ts";

/** A process we started (directly or through a daemonizing launcher), pinned by its start time. */
export interface ProcRef {
  readonly pid: number;
  /** /proc/<pid>/stat field 22 (clock ticks since boot) when first seen. */
  readonly startTime: number;
}

/** Fields after the parenthesised command name (which may hold spaces): state is [0], ppid [1]. */
function statFields(pid: number): string[] | undefined {
  const stat = readProc(pid, "stat");
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Pins a live pid; undefined when it is gone. */
export function procRef(pid: number): ProcRef | undefined {
  const f = statFields(pid);
  // starttime is field 22 of stat, i.e. index 19 counting from the state field (field 3).
  return f && f[19] !== undefined ? { pid, startTime: Number(f[19]) } : undefined;
}

/** True while the very process of `ref` runs (not a zombie, not a recycled pid). */
export function isRunning(ref: ProcRef): boolean {
  const f = statFields(ref.pid);
  return f !== undefined && f[0] !== "Z" && Number(f[19]) === ref.startTime;
}

/** The process title as `ps` shows it (OpenSRF rewrites argv: "OpenSRF Drone [opensrf.math]"). */
export function procTitle(pid: number): string {
  const cmd = readProc(pid, "cmdline");
  return cmd ? cmd.replace(/\0+$/, "").replace(/\0/g, " ").trim() : "";
}

/** Live descendants of the given roots (children, grandchildren, …), roots excluded. */
export function descendants(roots: readonly ProcRef[]): ProcRef[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(Number(e));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(e));
    children.set(ppid, list);
  }
  const out: ProcRef[] = [];
  const queue = roots.filter(isRunning).map((r) => r.pid);
  while (queue.length) {
    for (const c of children.get(queue.shift()!) ?? []) {
      const ref = procRef(c);
      if (!ref) continue;
      out.push(ref);
      queue.push(c);
    }
  }
  return out;
}

/** Sends `sig` if the process is still the one we started; false when it is gone. */
export function signalRef(ref: ProcRef, sig: NodeJS.Signals): boolean {
  if (!isRunning(ref)) return false;
  try {
    process.kill(ref.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Waits until none of `refs` runs; false on timeout. */
export async function waitGone(refs: readonly ProcRef[], timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (refs.some(isRunning)) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(25);
  }
  return true;
}
