/**
 * What start-up leaves behind in a listener or a drone: config parse trees, the service
 * module's load, the login, and compiled code that runs once.
 */

/**
 * Shortly after start-up, collects everything and asks JavaScriptCore to shrink its
 * footprint, which also drops compiled code: start-up code never runs again, and what runs
 * per request is compiled anew (from the binary's bytecode) as it runs. Only at start-up:
 * later it would throw away the request path a process has compiled. Measured (BENCHMARKS.md):
 * a listener ~2 MB less anonymous memory and PSS, a drone 0.8 MB less at ready and 1.3 MB
 * after 1000 requests, neither with a measurable change in CPU per request.
 * @param afterMs delay: a listener waits for its first drones' `ready`, a drone for none.
 */
export function releaseStartupMemory(afterMs: number): void {
  setTimeout(releaseMemoryNow, afterMs).unref();
}

/** A full collection, then JavaScriptCore's shrink (which drops compiled code as well). */
export function releaseMemoryNow(): void {
  Bun.gc(true);
  Bun.shrink();
}
