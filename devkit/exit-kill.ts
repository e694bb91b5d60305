/**
 * Last-resort clean-up for what tests start: whatever is still registered when the test
 * process exits, or dies of SIGINT, SIGTERM or SIGHUP, is killed at once, so a crashed or
 * interrupted run leaves no private servers behind.
 */

/** Something whose processes can be killed synchronously. */
export interface SyncKillable {
  killSync(): void;
}

const live = new Set<SyncKillable>();
let hooksInstalled = false;

/** Kills `k` at exit unless {@link releaseAtExit} came first. */
export function killAtExit(k: SyncKillable): void {
  live.add(k);
  installHooks();
}

/** `k` was stopped properly: nothing to do for it at exit. */
export function releaseAtExit(k: SyncKillable): void {
  live.delete(k);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanup = (): void => {
    for (const s of live) s.killSync();
    live.clear();
  };
  process.on("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      cleanup();
      // Re-raise so the process still dies of the signal as it would have without us.
      process.removeListener(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}
