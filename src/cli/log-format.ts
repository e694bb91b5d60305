/**
 * The `--log-format` option shared by serve, router and request.
 */
import type { LogFormat } from "../log/logger.ts";
import { ExitCode, fail } from "./exit-codes.ts";

/** citty definition of `--log-format`. */
export const logFormatArg = {
  type: "string",
  description: "Log line format: osrf (OpenSRF's, default) or json (one object per line, same fields)",
  default: "osrf",
} as const;

/** The option's value checked; exits with a usage error otherwise. */
export function parseLogFormat(value: string | undefined): LogFormat {
  if (value === undefined || value === "osrf" || value === "json") return value ?? "osrf";
  fail(`--log-format must be osrf or json, got "${value}"`, ExitCode.USAGE);
}
