/**
 * Resident memory of another process, read when a status report is built (never on the
 * request path): fresher than what a drone last reported, and known for drones that have
 * not served anything yet.
 */
import { readFileSync } from "node:fs";

/** RSS of `pid` in bytes from /proc/<pid>/status, or undefined (not Linux, or gone). */
export function rssOfPid(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}
