/**
 * The listener's HTTP status endpoint (`Bun.serve`, off unless configured): `/metrics` in
 * Prometheus text, `/status` as JSON and `/status?format=text` as php-fpm-style text, on
 * a unix socket or a loopback TCP port. Pages are built per request from counters the
 * listener keeps anyway; serving them never touches a drone.
 */
import { existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Server } from "bun";
import { DEFAULT_STATUS_HOST, describeEndpoint, fetchFromEndpoint } from "./endpoint.ts";
import { StatusEndpointError } from "./errors.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";
import { renderMetrics } from "./render.ts";
import { buildStatus, renderStatusText } from "./status.ts";
import type { PoolReadings, RouterRegistration, StatusEndpoint } from "./types.ts";

/** What {@link startStatusServer} needs. */
export interface StatusServerOptions {
  endpoint: StatusEndpoint;
  metrics: PoolReadings;
  /** Messages waiting for a drone now (the pool's backlog). */
  backlog(): number;
  /** This machine's host name, for the `host` label and `/status`. */
  host?: string;
  /** The listener's registration with each of its routers. */
  routers?: () => readonly RouterRegistration[];
}

/** A running status endpoint. */
export interface StatusServer {
  readonly endpoint: StatusEndpoint;
  /** Stops listening (and removes the socket file). */
  stop(): void;
}

/** Answers one request to the endpoint. Exported for tests. */
export function handleStatusRequest(
  req: Request,
  o: Pick<StatusServerOptions, "metrics" | "backlog" | "host" | "routers">,
): Response {
  if (req.method !== "GET" && req.method !== "HEAD")
    return new Response("only GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/metrics":
      return new Response(renderMetrics(o), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
    case "/status": {
      const status = buildStatus(o);
      if (url.searchParams.get("format") === "text") {
        return new Response(renderStatusText(status), { headers: { "content-type": "text/plain; charset=utf-8" } });
      }
      return Response.json(status);
    }
    case "/":
      return new Response("/metrics  Prometheus metrics\n/status   status (JSON; ?format=text for plain text)\n", {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    default:
      return new Response("not found: try /status or /metrics\n", { status: 404 });
  }
}

/**
 * Starts the endpoint. A socket file left by a listener that died is replaced; one a live
 * listener answers on is not.
 * @throws StatusEndpointError naming the socket or port and why it cannot be used.
 */
export async function startStatusServer(o: StatusServerOptions): Promise<StatusServer> {
  const e = o.endpoint;
  const where = describeEndpoint(e);
  const service = o.metrics.service;
  if (e.kind === "socket") await clearStaleSocket(e.path, service);
  let server: Server<undefined>;
  try {
    const fetch = (req: Request) => handleStatusRequest(req, o);
    server =
      e.kind === "socket"
        ? Bun.serve({ unix: e.path, fetch })
        : Bun.serve({ hostname: e.host ?? DEFAULT_STATUS_HOST, port: e.port, fetch });
  } catch (err) {
    throw new StatusEndpointError(`cannot serve status on ${where}: ${(err as Error).message}`, service);
  }
  // Bun removes the socket on stop(), not on process.exit(): the signal handlers exit.
  const onExit = () => removeSocket(e);
  process.on("exit", onExit);
  let stopped = false;
  return {
    endpoint: e,
    stop() {
      if (stopped) return;
      stopped = true;
      process.off("exit", onExit);
      void server.stop(true);
      removeSocket(e);
    },
  };
}

function removeSocket(e: StatusEndpoint): void {
  if (e.kind !== "socket") return;
  try {
    unlinkSync(e.path);
  } catch {
    // Already gone.
  }
}

async function clearStaleSocket(path: string, service: string): Promise<void> {
  if (!existsSync(path)) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw new StatusEndpointError(
        `cannot create the directory of status socket ${path}: ${(err as Error).message}`,
        service,
      );
    }
    return;
  }
  if (!lstatSync(path).isSocket()) {
    throw new StatusEndpointError(
      `status socket path ${path} exists and is not a socket; remove it or choose another path`,
      service,
    );
  }
  const alive = await fetchFromEndpoint({ kind: "socket", path }, "/status", 1000).then(
    () => true,
    () => false,
  );
  if (alive) throw new StatusEndpointError(`status socket ${path} is in use by a running listener`, service);
  unlinkSync(path);
}

/**
 * The endpoints a listener serves: its socket and/or port (both may be on; "" and 0 = off).
 * Command-line values override opensrf.xml's, each on its own.
 */
export function statusEndpoints(socket: string, port: number): StatusEndpoint[] {
  const out: StatusEndpoint[] = [];
  if (socket !== "") out.push({ kind: "socket", path: socket });
  if (port > 0) out.push({ kind: "port", port });
  return out;
}

/**
 * Starts one server per endpoint; if one fails, those already started are stopped.
 * @throws StatusEndpointError as {@link startStatusServer}.
 */
export async function startStatusServers(
  endpoints: readonly StatusEndpoint[],
  o: Omit<StatusServerOptions, "endpoint">,
): Promise<StatusServer[]> {
  const started: StatusServer[] = [];
  try {
    for (const endpoint of endpoints) started.push(await startStatusServer({ ...o, endpoint }));
  } catch (e) {
    for (const s of started) s.stop();
    throw e;
  }
  return started;
}
