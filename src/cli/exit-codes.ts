/**
 * Exit codes of every subcommand, and `fail()`, which prints one error line and exits with one.
 */
/** Process exit codes shared by every subcommand (documented in the README). */
export const ExitCode = {
  OK: 0,
  /** The request reached the service and got an error status. */
  REQUEST_FAILED: 1,
  /** Bad command line, config file or settings. */
  USAGE: 2,
  /** Bus (XMPP or Redis) unreachable, login refused, or message undeliverable. */
  TRANSPORT: 3,
  /** No reply within the timeout. */
  TIMEOUT: 4,
  /** Unexpected internal error (a bug: please report with the log). */
  INTERNAL: 70,
} as const;

/** Print one error line and exit with the given code. */
export function fail(message: string, code: number): never {
  process.stderr.write(`osrf-prefork: ${message}\n`);
  process.exit(code);
}
