/**
 * Status endpoints by name: the socket-path convention shared with `osrf-prefork start`,
 * one-line descriptions for messages, and fetching a page from one.
 */
import { join } from "node:path";
import { StatusUnreachableError } from "./errors.ts";
import type { StatusEndpoint } from "./types.ts";

/**
 * The status socket of a service started by `osrf-prefork start`: `<pid dir>/<service>.status.sock`
 * (pid dir: `/opensrf/default/dirs/pid` of opensrf.xml, or `--pid-dir`).
 */
export function statusSocketPath(pidDir: string, service: string): string {
  return join(pidDir, `${service}.status.sock`);
}

/** Address a status endpoint binds to when only a port is given: loopback only. */
export const DEFAULT_STATUS_HOST = "127.0.0.1";

/** "unix socket /run/x.sock" or "127.0.0.1:9100", for messages. */
export function describeEndpoint(e: StatusEndpoint): string {
  return e.kind === "socket" ? `unix socket ${e.path}` : `${e.host ?? DEFAULT_STATUS_HOST}:${e.port}`;
}

/** Where the endpoint's pages are (the host part is ignored on a unix socket). */
function urlOf(e: StatusEndpoint, path: string): string {
  return e.kind === "socket" ? `http://localhost${path}` : `http://${e.host ?? DEFAULT_STATUS_HOST}:${e.port}${path}`;
}

/**
 * GETs a page of a status endpoint, e.g. `/status` or `/metrics`.
 * @throws StatusUnreachableError when nothing answers there, or not with 200.
 */
export async function fetchFromEndpoint(e: StatusEndpoint, path: string, timeoutMs = 5000): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(urlOf(e, path), {
      signal: AbortSignal.timeout(timeoutMs),
      ...(e.kind === "socket" ? { unix: e.path } : {}),
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === "ENOENT"
        ? "no such socket"
        : code === "ECONNREFUSED"
          ? "connection refused"
          : (code ?? (err as Error).message);
    throw new StatusUnreachableError(`no status endpoint at ${describeEndpoint(e)} (${why})`);
  }
  if (res.status !== 200) {
    throw new StatusUnreachableError(`${describeEndpoint(e)} answered ${path} with HTTP ${res.status}`);
  }
  return res;
}
