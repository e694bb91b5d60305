/**
 * `osrf-prefork request`: a srfsh-style call (stateless or inside CONNECT) that prints each result
 * as JSON, with `--raw` showing the messages on the wire; exit codes say how it failed. The same
 * on either bus (`--bus`, `OSRF_BUS`, `<bus>`).
 */
import { hostname } from "node:os";
import { defineCommand } from "citty";
import { TransportError } from "../bus/errors.ts";
import { tapBus } from "../bus/tap.ts";
import type { BusConnection } from "../bus/types.ts";
import { Client } from "../client/client.ts";
import { DeliveryError, RequestError, TimeoutError } from "../client/errors.ts";
import type { PendingRequest } from "../client/types.ts";
import { withBus } from "../config/bus.ts";
import { loadClientConfig } from "../config/client.ts";
import { ConfigError } from "../config/errors.ts";
import { connectBus } from "../connect/bus.ts";
import { createLogger } from "../log/logger.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { makeResource } from "../protocol/ids.ts";
import { busArg } from "./bus-arg.ts";
import { coreConfigArg } from "./config-args.ts";
import { ExitCode, fail } from "./exit-codes.ts";
import { logFormatArg, parseLogFormat } from "./log-format.ts";
import { parseParams } from "./params.ts";

export default defineCommand({
  meta: {
    name: "request",
    description:
      "Call an OpenSRF method and print each result as JSON (like srfsh's `request`). Params: JSON values, one per argument or srfsh's comma-separated form",
  },
  args: {
    service: { type: "positional", description: "Service name, e.g. opensrf.math", required: true },
    method: {
      type: "positional",
      description: "Method name, e.g. add; any further arguments are its params",
      required: true,
    },
    config: {
      ...coreConfigArg("opensrf_core.xml (uses /config/opensrf) or srfsh.xml"),
    },
    timeout: { type: "string", description: "Seconds to wait for each reply", default: "60" },
    raw: {
      type: "boolean",
      description: "Show the messages exchanged (on stderr): XMPP stanzas, or Redis JSON elements",
      default: false,
    },
    bus: busArg,
    connect: { type: "boolean", description: "Run the call inside a CONNECT … DISCONNECT session", default: false },
    pretty: { type: "boolean", description: "Indent JSON output", default: false },
    xid: { type: "string", description: "Transaction id for the logs (a new one by default)" },
    loglevel: { type: "string", description: "Log level on stderr (1 error … 5 internal)", default: "1" },
    "log-format": logFormatArg,
  },
  async run({ args }) {
    const timeout = Number(args.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0)
      fail(`--timeout must be a positive number of seconds, got "${args.timeout}"`, ExitCode.USAGE);
    let params: ReturnType<typeof parseParams>;
    try {
      params = parseParams(args._.slice(2).map(String));
    } catch (e) {
      fail((e as Error).message, ExitCode.USAGE);
    }
    let cfg: ReturnType<typeof loadClientConfig>;
    try {
      cfg = withBus(loadClientConfig(args.config), { flag: args.bus });
    } catch (e) {
      if (e instanceof ConfigError) fail(e.message, ExitCode.USAGE);
      throw e;
    }
    const logger = createLogger({
      service: "osrf-prefork",
      logfile: "stderr",
      loglevel: Number(args.loglevel),
      format: parseLogFormat(args["log-format"]),
    });
    let conn: BusConnection;
    try {
      conn = await connectBus(cfg, { resource: makeResource("", hostname()), logger, reconnect: false });
    } catch (e) {
      if (e instanceof TransportError) fail(e.message, ExitCode.TRANSPORT);
      throw e;
    }
    const transport = args.raw
      ? tapBus(conn, (dir, text) => process.stderr.write(`${dir === "send" ? ">>" : "<<"} ${text}\n`))
      : conn;
    const client = new Client({
      transport,
      routerName: cfg.routerName,
      logger,
      timeout,
      ingress: "osrf-prefork",
      ownTransport: true,
    });
    const opts = { timeout, ...(args.xid ? { xid: args.xid } : {}) };
    let code: number = ExitCode.OK;
    try {
      let pending: PendingRequest;
      const session = args.connect ? client.session(args.service) : undefined;
      if (session) {
        await session.connect(opts);
        pending = session.request(args.method, params, opts);
      } else {
        pending = client.request(args.service, args.method, params, opts);
      }
      for await (const result of pending) {
        // Wait until written: process.exit() below drops whatever a pipe has not taken yet
        // (a 1 MB result got cut at 64 KB).
        const line = `${JSON.stringify(result, null, args.pretty ? 2 : undefined)}\n`;
        await new Promise<void>((resolve) => process.stdout.write(line, () => resolve()));
      }
      session?.disconnect();
    } catch (e) {
      code = exitCodeFor(e as Error);
      process.stderr.write(`osrf-prefork: ${(e as Error).message}\n`);
    }
    await client.close().catch(() => {});
    process.exit(code);
  },
});

function exitCodeFor(e: Error): number {
  if (e instanceof RequestError || e instanceof ProtocolError) return ExitCode.REQUEST_FAILED;
  if (e instanceof TimeoutError) return ExitCode.TIMEOUT;
  if (e instanceof DeliveryError || e instanceof TransportError) return ExitCode.TRANSPORT;
  return ExitCode.INTERNAL;
}
