/**
 * How drones tier up their JavaScript (`unix_config/drone_jit`).
 *
 * JavaScriptCore compiles a function to baseline machine code after ~500 calls' worth of
 * execution and to optimized code (DFG, then FTL) after ~1000 more, per process. A drone that
 * lives for max_requests (1000 in the stock settings) serves much of its life before its
 * request path is optimized, and every replacement starts over. With `eager` the listener
 * starts drones with lower tier-up thresholds (JSC reads `BUN_JSC_<option>` from the
 * environment), so the request path is compiled within the first few dozen requests.
 *
 * Lower thresholds would also compile the run-once start-up code (module evaluation, the
 * XMPP login), which costs start-up CPU and memory for nothing: a drone scales the
 * thresholds up by {@link BOOT_JIT_SCALE_ENV} (`Bun.unsafe.setJITPolicy`) until it is ready.
 */
import type { DroneJit } from "../config/types.ts";

/** Environment variable naming the factor a drone scales JIT thresholds by until `ready`. */
export const BOOT_JIT_SCALE_ENV = "OSRF_PREFORK_BOOT_JIT_SCALE";

/**
 * Thresholds of `eager` (JSC's defaults: 500 / 1000 / 100 / 1000), and no FTL, JSC's top
 * tier. Measured with bench/drone-age.ts; see BENCHMARKS.md "Drones from their first
 * request" and "No FTL in drones".
 */
export const EAGER_JIT_ENV: Readonly<Record<string, string>> = {
  BUN_JSC_thresholdForJITAfterWarmUp: "50",
  BUN_JSC_thresholdForOptimizeAfterWarmUp: "200",
  BUN_JSC_thresholdForJITSoon: "10",
  BUN_JSC_thresholdForOptimizeSoon: "50",
  // A drone reaches FTL after some 2,000 requests, and compiling it there cost 140 ms of
  // JIT-thread CPU over the next 7,000 with no gain on the JavaScript thread (its request
  // path is mostly runtime and kernel): pure cost for a drone that lives for sessions of a
  // dozen messages each or a max_requests above the stock 1000. DFG code stays.
  BUN_JSC_useFTLJIT: "0",
  // 20 × the lowered thresholds is about JSC's defaults: start-up code tiers as it always did.
  [BOOT_JIT_SCALE_ENV]: "20",
};

/**
 * Environment a listener adds for its drones. A `BUN_JSC_*` variable the listener itself
 * was started with is kept as it is (an operator's own tuning wins over ours).
 */
export function droneJitEnv(mode: DroneJit, inherited: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (mode !== "eager") return {};
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(EAGER_JIT_ENV)) if (inherited[k] === undefined) env[k] = v;
  return env;
}

/** The scale a drone starts with, from its environment: 1 (none) unless the listener set one. */
export function bootJitScale(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env[BOOT_JIT_SCALE_ENV]);
  return Number.isFinite(n) && n > 1 ? n : 1;
}

/** `Bun.unsafe.setJITPolicy` where this runtime has it; a no-op elsewhere. */
export function setJitPolicy(scale: number): boolean {
  const unsafe = (Bun as unknown as { unsafe?: { setJITPolicy?: (s: number) => void } }).unsafe;
  if (typeof unsafe?.setJITPolicy !== "function") return false;
  unsafe.setJITPolicy(scale);
  return true;
}
