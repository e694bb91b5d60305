/**
 * A drone's memory, for `max_memory_mb`. RSS counts the runtime's shared pages (~30 MB of
 * the binary shared by every drone), so the limit is checked against private memory
 * (Private_Clean + Private_Dirty of /proc/self/smaps_rollup), read only when RSS alone is
 * over the limit (private ≤ RSS, and the read costs more than a request's bookkeeping).
 */
import { readFileSync } from "node:fs";

/** Resident set size in bytes. */
export function rssBytes(): number {
  return process.memoryUsage.rss();
}

/** Private memory in bytes, or undefined where /proc/self/smaps_rollup is unavailable. */
export function privateBytes(): number | undefined {
  let text: string;
  try {
    text = readFileSync("/proc/self/smaps_rollup", "utf8");
  } catch {
    return undefined;
  }
  let kb = 0;
  let found = false;
  for (const m of text.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB$/gm)) {
    kb += Number(m[1]);
    found = true;
  }
  return found ? kb * 1024 : undefined;
}

/**
 * When the process uses more than `limitMb` MiB of private memory (RSS where private
 * memory cannot be read), a one-line reason; otherwise undefined. `limitMb` 0 = no limit.
 */
export function memoryOverLimit(limitMb: number, rss: number = rssBytes()): string | undefined {
  if (limitMb <= 0) return undefined;
  const limit = limitMb * 1024 * 1024;
  if (rss <= limit) return undefined;
  const priv = privateBytes();
  const used = priv ?? rss;
  if (used <= limit) return undefined;
  const mb = (n: number) => (n / (1024 * 1024)).toFixed(1);
  return `${priv === undefined ? "RSS" : "private memory"} ${mb(used)} MB is above max_memory_mb ${limitMb}`;
}
