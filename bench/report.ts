/**
 * What every bench report shares: the commit measured, the machine, number formats.
 */
import { execSync } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { ROOT } from "./stack.ts";

/** Progress goes to stderr; the report alone to stdout. */
export function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * Short hash of HEAD, marked when tracked files have uncommitted changes (untracked ones, such
 * as a worktree's node_modules symlink, are not the code measured).
 */
export function commit(): string {
  try {
    const sha = execSync("git rev-parse --short HEAD", { cwd: ROOT }).toString().trim();
    const dirty = execSync("git status --porcelain --untracked-files=no", { cwd: ROOT }).toString().trim() !== "";
    return dirty ? `${sha} + uncommitted changes` : sha;
  } catch {
    return "unknown";
  }
}

/** `commit …; 2 × CPU model, N GiB; Bun x.y.z; ISO date` for the line under a report's title. */
export function machineLine(): string {
  const cpuModel = cpus()[0]?.model.trim() ?? "unknown CPU";
  return `commit ${commit()}; ${cpus().length} × ${cpuModel}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Bun ${Bun.version}; ${new Date().toISOString()}`;
}

/** A rate: thousands separated from 100 up, one decimal below. */
export const fmtRate = (r: number): string => (r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
/** Milliseconds with two decimals, "—" for none. */
export const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : "—");
/** kB as MB with one decimal. */
export const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
export const avg = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
/** The p-th percentile of an ascending list. */
export const pct = (xs: number[], p: number): number =>
  xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN;
