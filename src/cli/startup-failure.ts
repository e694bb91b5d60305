/**
 * How a listener that could not start ends: one line naming the service and the problem,
 * and the exit code that says whose fault it is (the files, or the bus).
 */

import { TransportError } from "../bus/errors.ts";
import { ConfigError } from "../config/errors.ts";
import { StatusEndpointError } from "../metrics/errors.ts";
import { PreforkError, SettingsError } from "../prefork/errors.ts";
import { ExitCode, fail } from "./exit-codes.ts";

/**
 * Exits with TRANSPORT for settings that could not be fetched and bus failures, USAGE for
 * bad files, a bad app module or an unusable status endpoint; rethrows anything else (a bug).
 */
export function failStartup(service: string, e: unknown): never {
  if (e instanceof SettingsError || e instanceof TransportError) fail(`${service}: ${e.message}`, ExitCode.TRANSPORT);
  if (e instanceof ConfigError || e instanceof PreforkError || e instanceof StatusEndpointError) {
    fail(`${service}: ${e.message}`, ExitCode.USAGE);
  }
  throw e;
}
