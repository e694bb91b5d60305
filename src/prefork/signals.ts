/**
 * The listener's signals, as C osrf_prefork.c and OpenSRF's control scripts use them:
 *
 * | signal        | action |
 * |---------------|--------|
 * | TERM          | graceful stop: unregister, finish busy and queued work (shutdown_timeout), exit 0 |
 * | INT, QUIT     | immediate stop: unregister, kill drones, exit 0 |
 * | USR1          | unregister from the routers (drones keep serving what they have) |
 * | USR2          | register again |
 * | HUP           | reload settings and app code by replacing drones; reopen logs |
 */
import type { Logger } from "../log/types.ts";

/** What the signals act on (a {@link Listener} plus log reopening). */
export interface SignalTarget {
  stopGracefully(): Promise<void>;
  stopNow(): Promise<void>;
  unregister(): void;
  register(): void;
  reload(): Promise<void>;
}

const SIGNALS = ["SIGTERM", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGHUP"] as const;

/**
 * Installs the handlers; returns a function removing them.
 * @param exit Ends the process once a stop has finished (tests pass a fake).
 */
export function installSignalHandlers(
  target: SignalTarget,
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  let stopping: "graceful" | "now" | undefined;
  const report = (what: string) => (e: unknown) => logger.error(`${what} failed: ${(e as Error)?.stack ?? String(e)}`);

  const handlers: Record<(typeof SIGNALS)[number], () => void> = {
    SIGTERM: () => {
      if (stopping) {
        logger.info("received SIGTERM while already stopping; send SIGINT to stop at once");
        return;
      }
      stopping = "graceful";
      logger.info("server: received SIGTERM, shutting down");
      void target
        .stopGracefully()
        .catch(report("graceful shutdown"))
        .finally(() => exit(0));
    },
    SIGINT: () => stopNow("SIGINT"),
    SIGQUIT: () => stopNow("SIGQUIT"),
    SIGUSR1: () => {
      logger.info("received SIGUSR1: unregistering from the routers");
      target.unregister();
    },
    SIGUSR2: () => {
      if (stopping) return;
      logger.info("received SIGUSR2: registering with the routers");
      target.register();
    },
    SIGHUP: () => {
      if (stopping) return;
      logger.info("received SIGHUP: reloading");
      void target.reload().catch(report("reload"));
    },
  };

  function stopNow(sig: string): void {
    if (stopping === "now") return;
    stopping = "now";
    logger.info(`server: received ${sig}, shutting down now`);
    void target
      .stopNow()
      .catch(report("shutdown"))
      .finally(() => exit(0));
  }

  for (const sig of SIGNALS) process.on(sig, handlers[sig]);
  return () => {
    for (const sig of SIGNALS) process.off(sig, handlers[sig]);
  };
}
