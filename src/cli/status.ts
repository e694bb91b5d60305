/**
 * `osrf-prefork status`: a pool's drones, requests and backlog, fetched from the listener's status
 * endpoint (found from opensrf.xml and the pid dir, or given).
 */
import { hostname } from "node:os";
import { defineCommand } from "citty";
import { DEFAULT_PID_DIR, DEFAULT_SETTINGS_FILE } from "../config/defaults.ts";
import { ConfigError } from "../config/errors.ts";
import { describeEndpoint, fetchFromEndpoint } from "../metrics/endpoint.ts";
import { StatusUnreachableError } from "../metrics/errors.ts";
import {
  activeApps,
  candidateEndpoints,
  type HostSettings,
  liveCandidates,
  readHostSettings,
} from "../metrics/locate.ts";
import { renderStatusTable } from "../metrics/table.ts";
import type { PoolStatus, StatusEndpoint } from "../metrics/types.ts";
import { ExitCode, fail } from "./exit-codes.ts";

const HOW_TO_ENABLE =
  "is its listener running (`osrf-prefork start`, or `serve` with the same opensrf.xml)? " +
  "A listener with --status-socket PATH or --status-port N is asked with --socket or --port";

export default defineCommand({
  meta: {
    name: "status",
    description:
      "Show a prefork service's pool (drones, their state, requests, memory) from its listener's status endpoint",
  },
  args: {
    service: {
      type: "string",
      description: "Service to show; its endpoint is looked up in opensrf.xml and the pid dir",
    },
    all: {
      type: "boolean",
      description: "Show every service in activeapps of this host that has a status endpoint",
      default: false,
    },
    socket: { type: "string", description: "Ask the listener on this unix socket" },
    port: { type: "string", description: "Ask the listener on this TCP port of 127.0.0.1" },
    json: { type: "boolean", description: "Print the status as JSON", default: false },
    settings: { type: "string", description: "opensrf.xml (for --service and --all)", default: DEFAULT_SETTINGS_FILE },
    "pid-dir": {
      type: "string",
      description: `Directory of the status sockets (default: dirs/pid of opensrf.xml, else ${DEFAULT_PID_DIR})`,
    },
    host: { type: "string", description: "Host name of the /opensrf/hosts/<host> section (default: this machine's)" },
    timeout: { type: "string", description: "Seconds to wait for an answer", default: "5" },
  },
  async run({ args }) {
    const timeoutMs = Number(args.timeout) * 1000;
    if (!(timeoutMs > 0)) fail(`--timeout must be a positive number of seconds, got "${args.timeout}"`, ExitCode.USAGE);
    if (args.socket && args.port) fail("--socket and --port exclude each other", ExitCode.USAGE);
    if (args.all && (args.socket || args.port || args.service))
      fail("--all excludes --service, --socket and --port", ExitCode.USAGE);

    const targets: Array<{ name: string; endpoints: StatusEndpoint[] }> = [];
    if (args.socket || args.port) {
      targets.push({ name: args.service ?? "", endpoints: [explicitEndpoint(args.socket, args.port)] });
    } else if (args.service || args.all) {
      const host = readSettings(args.settings, args.host ?? hostname(), args["pid-dir"]);
      const services = args.service ? [args.service] : activeApps(host);
      const missing: string[] = [];
      for (const name of services) {
        const candidates = candidateEndpoints(host, name);
        const endpoints = liveCandidates(candidates);
        if (endpoints.length > 0) targets.push({ name, endpoints });
        else if (args.service)
          fail(`${name}: no status endpoint (${lookedFor(candidates)}); ${HOW_TO_ENABLE}`, ExitCode.TRANSPORT);
        else missing.push(name);
      }
      if (missing.length > 0) process.stderr.write(`osrf-prefork: no status endpoint for: ${missing.join(", ")}\n`);
      if (targets.length === 0)
        fail(`no service of ${args.settings} has a status endpoint; ${HOW_TO_ENABLE}`, ExitCode.TRANSPORT);
    } else {
      fail("say which listener: --service S (with --settings), --all, --socket PATH or --port N", ExitCode.USAGE);
    }

    const results = await Promise.all(targets.map((t) => fetchStatus(t.name, t.endpoints, timeoutMs)));
    const ok = results.filter((r): r is PoolStatus => typeof r !== "string");
    for (const r of results) if (typeof r === "string") process.stderr.write(`osrf-prefork: ${r}\n`);
    if (ok.length > 0) {
      const out = args.json
        ? `${JSON.stringify(args.all ? ok : ok[0], null, 2)}\n`
        : ok.map(renderStatusTable).join("\n");
      await new Promise<void>((resolve) => process.stdout.write(out, () => resolve()));
    }
    process.exit(ok.length === results.length ? ExitCode.OK : ExitCode.TRANSPORT);
  },
});

function explicitEndpoint(socket: string | undefined, port: string | undefined): StatusEndpoint {
  if (socket) return { kind: "socket", path: socket };
  const n = Number(port);
  if (!(Number.isInteger(n) && n > 0 && n < 65536))
    fail(`--port must be a TCP port (1-65535), got "${port}"`, ExitCode.USAGE);
  return { kind: "port", port: n };
}

function readSettings(file: string, host: string, pidDir: string | undefined): HostSettings {
  try {
    return readHostSettings(file, host, pidDir);
  } catch (e) {
    if (e instanceof ConfigError) fail(`${e.message} (pass --settings, or --socket/--port)`, ExitCode.USAGE);
    throw e;
  }
}

function lookedFor(candidates: readonly StatusEndpoint[]): string {
  if (candidates.length === 0) return "no dirs/pid or --pid-dir, and no status_socket or status_port in opensrf.xml";
  return `looked for ${candidates.map(describeEndpoint).join(", ")}`;
}

/**
 * The status from the first of `endpoints` that gives one (a socket left by a listener
 * that died answers nothing, and the next is asked), or a one-line error naming each
 * endpoint tried and how to get one.
 */
async function fetchStatus(name: string, endpoints: StatusEndpoint[], timeoutMs: number): Promise<PoolStatus | string> {
  const who = name ? `${name}: ` : "";
  const problems: string[] = [];
  for (const endpoint of endpoints) {
    try {
      const res = await fetchFromEndpoint(endpoint, "/status", timeoutMs);
      const body = (await res.json().catch(() => undefined)) as PoolStatus | undefined;
      if (body && typeof body.service === "string" && Array.isArray(body.processes)) return body;
      problems.push(`${describeEndpoint(endpoint)} is not an osrf-prefork status endpoint`);
    } catch (e) {
      if (!(e instanceof StatusUnreachableError)) throw e;
      problems.push(e.message);
    }
  }
  return `${who}${problems.join("; ")}; ${HOW_TO_ENABLE}`;
}
