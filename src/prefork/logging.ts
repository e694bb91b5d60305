/**
 * Loggers of the listener and its drones, from `/config/opensrf` of opensrf_core.xml.
 */
import type { ClientConfig } from "../config/types.ts";
import { createLogger, type LogFormat, type OsrfLogger } from "../log/logger.ts";

/**
 * A logger tagged with the service name (as C services log) and the role in the file
 * field ("listener" or "drone"); the XMPP password is masked wherever it might appear.
 * @param log Destination, level and line format after command-line overrides.
 */
export function preforkLogger(
  service: string,
  role: "listener" | "drone",
  cfg: ClientConfig,
  log: { logfile: string; loglevel: number; format?: LogFormat },
): OsrfLogger {
  return createLogger({
    service,
    logfile: log.logfile,
    loglevel: log.loglevel,
    ...(log.format ? { format: log.format } : {}),
    ...(cfg.syslog !== undefined ? { syslog: cfg.syslog } : {}),
    ...(cfg.actlog !== undefined ? { actlog: cfg.actlog } : {}),
    ...(cfg.logtag !== undefined ? { logtag: cfg.logtag } : {}),
    ...(cfg.loglength !== undefined ? { loglength: cfg.loglength } : {}),
    component: role,
    secrets: [cfg.passwd],
  });
}
