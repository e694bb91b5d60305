/**
 * Finding a service's status endpoint from opensrf.xml, for `osrf-prefork status`: the
 * default socket (`osrf-prefork start`'s in the pid dir, or a plain `serve`'s there or in a
 * per-user runtime dir), else the `status_socket` or `status_port` configured under the
 * service's `unix_config`.
 */
import { existsSync } from "node:fs";
import { pidDirOf } from "../config/defaults.ts";
import { hostConfig, lookup, readSettingsFile, settingText as text } from "../config/settings.ts";
import type { SettingsTree } from "../config/types.ts";
import { defaultSocketCandidates, runtimeDirs } from "./default-socket.ts";
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

/**
 * Where a service's status may be, most likely first: the default sockets (pid dir, then
 * each of `dirs`), the configured socket, the configured port.
 */
export function candidateEndpoints(s: HostSettings, service: string, dirs = runtimeDirs()): StatusEndpoint[] {
  const out: StatusEndpoint[] = defaultSocketCandidates(s.pidDir, service, dirs).map((path) => ({
    kind: "socket",
    path,
  }));
  const unix = `/apps/${service}/unix_config`;
  const socket = text(lookup(s.tree, `${unix}/status_socket`));
  if (socket && !out.some((e) => e.kind === "socket" && e.path === socket)) out.push({ kind: "socket", path: socket });
  const port = Number(text(lookup(s.tree, `${unix}/status_port`)));
  if (Number.isInteger(port) && port > 0 && port < 65536) out.push({ kind: "port", port });
  return out;
}

/**
 * The endpoints worth asking, in order: the candidate sockets that exist, then the
 * configured port; empty when there are none. A socket a dead listener left behind is
 * still listed: asking it fails, and the next one is asked.
 */
export function liveCandidates(candidates: readonly StatusEndpoint[]): StatusEndpoint[] {
  return candidates.filter((e) => e.kind === "port" || existsSync(e.path));
}
