/**
 * Closed-loop load: `concurrency` callers, each starting its next call as soon as the last
 * one finished, for a fixed time after a warm-up. Latency is per call, start to last reply.
 */

/** Throughput and latency of one measured run. */
export interface LoadResult {
  concurrency: number;
  /** Calls completed in the measured window. */
  calls: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  /** Calls that failed (not counted in `calls`); the first error's message. */
  errors: number;
  firstError?: string;
}

/** How long to run. */
export interface LoadPlan {
  concurrency: number;
  warmupMs: number;
  measureMs: number;
  /** Stop the measured window early after this many calls (smoke runs). */
  maxCalls?: number;
  /** Called as the measured window opens and closes (CPU snapshots). */
  onWindow?: (edge: "start" | "end") => void;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Runs `call` in `plan.concurrency` loops. Only calls that start and end inside the
 * measured window count; errors are counted, never thrown.
 */
export async function runLoad(plan: LoadPlan, call: () => Promise<unknown>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let phase: "warmup" | "measure" | "done" = "warmup";
  let measureStart = 0;
  let measureEnd = 0;

  const loop = async (): Promise<void> => {
    while (phase !== "done") {
      const inWindow = phase === "measure";
      const t0 = performance.now();
      try {
        await call();
        const t1 = performance.now();
        if (inWindow && phase === "measure" && t0 >= measureStart) {
          latencies.push(t1 - t0);
          if (plan.maxCalls !== undefined && latencies.length >= plan.maxCalls) phase = "done";
        }
      } catch (e) {
        if (inWindow) {
          errors++;
          firstError ??= (e as Error).message;
        }
        // Do not spin on a dead service.
        await Bun.sleep(5);
      }
    }
  };

  const loops = Array.from({ length: plan.concurrency }, () => loop());
  await Bun.sleep(plan.warmupMs);
  plan.onWindow?.("start");
  phase = "measure";
  measureStart = performance.now();
  const deadline = measureStart + plan.measureMs;
  // Smoke runs may end earlier, on a call count; a window too short for even one call
  // (a slow server, a loaded machine) is stretched until one completes, up to 30 s more.
  for (;;) {
    const now = performance.now();
    if (phase !== "measure") break;
    if (now >= deadline && (latencies.length > 0 || now >= deadline + 30_000)) break;
    await Bun.sleep(now < deadline ? Math.min(10, deadline - now) : 10);
  }
  measureEnd = performance.now();
  phase = "done";
  plan.onWindow?.("end");
  await Promise.all(loops);
  const seconds = (measureEnd - measureStart) / 1000;
  latencies.sort((a, b) => a - b);
  const out: LoadResult = {
    concurrency: plan.concurrency,
    calls: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    errors,
  };
  if (firstError !== undefined) out.firstError = firstError;
  return out;
}
