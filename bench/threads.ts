/**
 * CPU per thread of a process, summed by thread name (Linux /proc/PID/task): how much of a
 * Bun process's CPU is its JavaScript thread and how much the JIT and GC helpers.
 */
import { readdirSync, readFileSync } from "node:fs";

/** CPU seconds by thread name ("osrf-drone", "JITWorker", "HeapHelper", …; digits folded). */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).replace(/\d+$/, "#");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended
    }
  }
  return out;
}
