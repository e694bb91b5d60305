/**
 * The logger of test-side connections and helper processes: errors only, on stderr, so a run
 * stays readable unless something breaks.
 */
import { createLogger, type OsrfLogger } from "../src/log/logger.ts";

/** A real OpenSRF logger at level 1 (errors) writing to stderr. */
export function quietLogger(service = "test"): OsrfLogger {
  return createLogger({ service, logfile: "stderr", loglevel: 1 });
}
