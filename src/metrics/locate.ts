/**
 * Finding a service's status endpoint from opensrf.xml, for `osrf-prefork status`:
 * the `osrf-prefork start` socket in the pid dir, else the `status_socket` or
 * `status_port` configured under the service's `unix_config`.
 */
import { existsSync } from "node:fs";
import { pidDirOf } from "../config/defaults.ts";
import { hostConfig, lookup, readSettingsFile, settingText as text } from "../config/settings.ts";
import type { SettingsTree } from "../config/types.ts";
import { statusSocketPath } from "./endpoint.ts";
import type { StatusEndpoint } from "./types.ts";

/** opensrf.xml as seen by one host. */
export interface HostSettings {
  /** `/opensrf/default` overlaid by `/opensrf/hosts/<host>`. */
  tree: SettingsTree;
  /** `--pid-dir`, else `dirs/pid` of opensrf.xml, else osrf_control's default. */
  pidDir: string;
}

/**
 * Reads opensrf.xml for `host`.
 * @throws ConfigError for an unreadable or malformed file.
 */
export function readHostSettings(file: string, host: string, pidDir?: string): HostSettings {
  const tree = hostConfig(readSettingsFile(file), host);
  return { tree, pidDir: pidDirOf(tree, pidDir) };
}

/** Services in `activeapps/appname` of the host, in file order. */
export function activeApps(s: HostSettings): string[] {
  const v = lookup(s.tree, "/activeapps/appname");
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return list.map(text).filter((n): n is string => n !== undefined);
}

/** Where a service's status may be, most likely first. */
export function candidateEndpoints(s: HostSettings, service: string): StatusEndpoint[] {
  const out: StatusEndpoint[] = [];
  if (s.pidDir) out.push({ kind: "socket", path: statusSocketPath(s.pidDir, service) });
  const unix = `/apps/${service}/unix_config`;
  const socket = text(lookup(s.tree, `${unix}/status_socket`));
  if (socket && !out.some((e) => e.kind === "socket" && e.path === socket)) out.push({ kind: "socket", path: socket });
  const port = Number(text(lookup(s.tree, `${unix}/status_port`)));
  if (Number.isInteger(port) && port > 0 && port < 65536) out.push({ kind: "port", port });
  return out;
}

/**
 * The endpoint to ask: the first candidate socket that exists, else the configured port;
 * undefined when there is neither (the first candidate socket is then what was looked for).
 */
export function pickEndpoint(candidates: readonly StatusEndpoint[]): StatusEndpoint | undefined {
  return candidates.find((e) => e.kind === "socket" && existsSync(e.path)) ?? candidates.find((e) => e.kind === "port");
}
