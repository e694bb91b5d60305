/**
 * Starting a listener from files (C `osrf_prefork_run`): read opensrf_core.xml and the
 * service's settings, load the app, log in, run the app's `init`, start drones, register.
 */

import { hostname } from "node:os";
import { Client } from "../client/client.ts";
import { withBus } from "../config/bus.ts";
import { readCoreConfig } from "../config/core.ts";
import { settingsFileOf } from "../config/defaults.ts";
import type { CoreConfig, PreforkSettings } from "../config/types.ts";
import { connectBus } from "../connect/bus.ts";
import type { LogFormat, OsrfLogger } from "../log/logger.ts";
import {
  defaultStatusSocket,
  describeEndpoint,
  NoDefaultSocketError,
  StatusEndpointError,
  type StatusServer,
  type StatusServerOptions,
  startStatusServer,
  startStatusServers,
  statusEndpoints,
} from "../metrics/index.ts";
import { makeResource } from "../protocol/ids.ts";
import { loadServiceModule, resolveAppPath } from "./app-loader.ts";
import { ListenerBoard } from "./board.ts";
import { AppLoadError, BoardError } from "./errors.ts";
import type { DroneInit } from "./ipc.ts";
import { droneJitEnv } from "./jit.ts";
import { Listener } from "./listener.ts";
import { preforkLogger } from "./logging.ts";
import { PoolMetrics } from "./pool-metrics.ts";
import { loadSettings, type SettingsSource } from "./settings-source.ts";
import { installSignalHandlers } from "./signals.ts";
import { BunDroneSpawner } from "./spawner.ts";

/** Options of `osrf-prefork serve`. */
export interface ServeOptions {
  service: string;
  /** Service module path, relative to the current directory or absolute. */
  app: string;
  /** opensrf_core.xml. */
  config: string;
  /** `--bus`: overrides `$OSRF_BUS` and `<bus>` of opensrf_core.xml (see src/config/bus.ts). */
  bus?: string;
  /** opensrf.xml; default `<settings_config>` of opensrf_core.xml, else {@link DEFAULT_SETTINGS_FILE}. */
  settings?: string;
  /** Ask `opensrf.settings` on the bus instead of reading opensrf.xml. */
  settingsFromBus?: boolean;
  /** Host name for `/opensrf/hosts/<host>`; the XMPP resources always name this machine (see {@link droneInit}). */
  host: string;
  /** Overrides of `<logfile>` / `<loglevel>`. */
  logfile?: string;
  loglevel?: number;
  /** Log line format of the listener and its drones (default "osrf"). */
  logFormat?: LogFormat;
  /** Overrides `unix_config/status_port` (0 = off): status endpoint on 127.0.0.1. Read at start only. */
  statusPort?: number;
  /**
   * Overrides `unix_config/status_socket`: status endpoint on this unix socket ("" = none).
   * When neither gives one, the listener serves on its default socket
   * (`<pid dir>/<service>.status.sock`, else the per-user runtime dir). Read at start only.
   */
  statusSocket?: string;
}

/** Where OpenSRF installs opensrf.xml. */

/** A started listener. */
export interface RunningService {
  listener: Listener;
  logger: OsrfLogger;
  settings: PreforkSettings;
  metrics: PoolMetrics;
  /** Status endpoints being served (none unless configured). */
  status: StatusServer[];
  /** Removes the signal handlers (tests). */
  uninstallSignals(): void;
}

/**
 * Starts the listener and installs its signal handlers.
 * @throws ConfigError (bad file or value), AppLoadError (module or its init hook),
 *   SettingsError (settings server) or ConnectError (bus login), each one line.
 */
export async function startService(o: ServeOptions): Promise<RunningService> {
  const core = readCore(o);
  const logger = listenerLogger(core, o);
  const appPath = resolveAppPath(o.app);
  const definition = await loadServiceModule(appPath);
  const settingsFile = settingsFileOf(core, o.settings);

  // A bad opensrf.xml should fail before anything connects.
  let settings = o.settingsFromBus ? undefined : await loadSettings(fileSource(settingsFile, o.host), o.service);

  logger.info(`Loading config in osrf_forker for app ${o.service}`);
  const transport = await connectBus(core.opensrf, {
    resource: makeResource(`${o.service}_listener`, hostname()),
    logger,
    // Request bodies go to the drones as they arrived; the listener reads none of them.
    lazyBodies: true,
  });
  const client = new Client({ transport, routerName: core.opensrf.routerName, logger });
  // Until the listener takes the connection over, only the client's own replies matter.
  transport.onMessage((s) => void client.dispatch(s));
  const source: SettingsSource = o.settingsFromBus
    ? { kind: "bus", client, host: o.host }
    : fileSource(settingsFile, o.host);
  try {
    settings ??= await loadSettings(source, o.service);
    for (const w of settings.warnings) logger.warn(w);
    try {
      await definition.init?.({ service: o.service, log: logger, client });
    } catch (e) {
      throw new AppLoadError(`the init hook of ${appPath} failed: ${(e as Error).message}`, {
        service: o.service,
        app: appPath,
      });
    }
  } catch (e) {
    await transport.close();
    throw e;
  }

  const board = freeDroneBoard(logger);
  const spawner = new BunDroneSpawner({
    init: droneInit(core, o, appPath, settings),
    jitter: settings.maxRequestsJitter,
    env: droneJitEnv(settings.droneJit),
    ...(board ? { board } : {}),
  });
  const metrics = new PoolMetrics(o.service);
  metrics.bus = transport.kind;
  transport.onOnline((reconnected) => metrics.online(reconnected));
  let current = core;
  const listener = new Listener({
    service: o.service,
    transport,
    client,
    routers: core.opensrf.routers,
    spawner: metrics.observeSpawner(spawner),
    onFailure: (f) => metrics.failure(f),
    limits: settings,
    shutdownTimeout: settings.shutdownTimeout,
    registerInterval: settings.registerInterval,
    routerProbeInterval: settings.routerProbeInterval,
    logger,
    reload: async () => {
      logger.reopen();
      // Drones get the new opensrf_core.xml too (log level, …); the listener keeps its
      // connection and router list until it is restarted.
      try {
        current = readCore(o);
      } catch (e) {
        logger.warn(`keeping the previous opensrf_core.xml: ${(e as Error).message}`);
      }
      const next = await loadSettings(source, o.service);
      for (const w of next.warnings) logger.warn(w);
      // New drones import the file anew; check it loads before replacing working ones.
      await loadServiceModule(appPath, true);
      spawner.update(droneInit(current, o, appPath, next), next.maxRequestsJitter, droneJitEnv(next.droneJit));
      return {
        limits: next,
        shutdownTimeout: next.shutdownTimeout,
        registerInterval: next.registerInterval,
        routerProbeInterval: next.routerProbeInterval,
      };
    },
  });
  let status: StatusServer[];
  try {
    const readings = {
      metrics,
      backlog: () => listener.pool.stats().backlog,
      host: hostname(),
      routers: () => listener.registration.states(),
    };
    const socket = o.statusSocket ?? settings.statusSocket;
    const endpoints = statusEndpoints(socket, o.statusPort ?? settings.statusPort);
    status = await startStatusServers(endpoints, readings);
    if (o.statusSocket === undefined && socket === "") {
      const d = await startDefaultStatusSocket(o.service, settings.pidDir, readings, logger);
      if (d) status.push(d);
    }
  } catch (e) {
    await transport.close();
    throw e;
  }
  logger.info(
    `Prefork launching drones for ${o.service} with max_requests=${settings.maxRequests}, min_children=${settings.minChildren}, ` +
      `max_children=${settings.maxChildren}, max_backlog_queue=${settings.maxBacklogQueue}, keepalive=${settings.keepalive}`,
  );
  listener.start();
  const uninstallSignals = installSignalHandlers(listener, logger);
  logger.info(`Launching osrf_forker for app ${o.service} as ${transport.address}`);
  for (const s of status) logger.info(`${o.service}: status and metrics on ${describeEndpoint(s.endpoint)}`);
  return { listener, logger, settings, metrics, status, uninstallSignals };
}

/**
 * The free-drone board of this listener's pool (board.ts), removed when the process exits;
 * without one (it could not be made) drones report every request by IPC, as before.
 */
function freeDroneBoard(logger: OsrfLogger): ListenerBoard | undefined {
  try {
    const board = ListenerBoard.create();
    process.once("exit", () => board.remove());
    return board;
  } catch (e) {
    if (!(e instanceof BoardError)) throw e;
    logger.warn(`${e.message}; drones report every request by IPC`);
    return undefined;
  }
}

/**
 * The status socket a listener gets when none is configured, so `osrf-prefork status`
 * finds a plain `serve` as it finds `start`'s listeners. Unlike a configured endpoint it
 * never stops the start: when it cannot be had (another live listener of this service and
 * pid dir holds it, no usable directory) the listener says so and serves without it.
 */
async function startDefaultStatusSocket(
  service: string,
  pidDir: string,
  readings: Omit<StatusServerOptions, "endpoint">,
  logger: OsrfLogger,
): Promise<StatusServer | undefined> {
  try {
    const d = defaultStatusSocket(pidDir, service);
    if (d.fallback) logger.info(`${service}: pid dir ${d.fallback}; status socket in the per-user runtime dir`);
    return await startStatusServer({ ...readings, endpoint: { kind: "socket", path: d.path } });
  } catch (e) {
    if (!(e instanceof StatusEndpointError)) throw e;
    // Nowhere to put it is how a bare container is, not a fault; a live listener holding
    // this very socket is worth a warning.
    const log = e instanceof NoDefaultSocketError ? logger.info.bind(logger) : logger.warn.bind(logger);
    log(`${service}: no default status socket: ${e.message} (pass --status-socket PATH)`);
    return undefined;
  }
}

/** opensrf_core.xml with the bus chosen (`--bus`, `$OSRF_BUS`, `<bus>`): the drones get the same. */
function readCore(o: ServeOptions): CoreConfig {
  const core = readCoreConfig(o.config);
  return { ...core, opensrf: withBus(core.opensrf, { flag: o.bus }) };
}

function fileSource(file: string, host: string): SettingsSource {
  return { kind: "file", file, host };
}

function listenerLogger(core: CoreConfig, o: ServeOptions): OsrfLogger {
  return preforkLogger(o.service, "listener", core.opensrf, logTarget(core, o));
}

function logTarget(core: CoreConfig, o: ServeOptions): DroneInit["log"] {
  return {
    logfile: o.logfile ?? core.opensrf.logfile,
    loglevel: o.loglevel ?? core.opensrf.loglevel,
    ...(o.logFormat ? { format: o.logFormat } : {}),
  };
}

/**
 * What the drones are started with. Their resources (and the listener's) carry this machine's
 * name, not `o.host`: C takes it from gethostname() whatever `-h` the settings are read for,
 * so with `--host localhost` (osrf_control --localhost) router stats still tell hosts apart.
 */
export function droneInit(core: CoreConfig, o: ServeOptions, appPath: string, s: PreforkSettings): DroneInit {
  return {
    service: o.service,
    appPath,
    hostname: hostname(),
    client: core.opensrf,
    logProtect: core.logProtect,
    settings: {
      keepalive: s.keepalive,
      maxChunkSize: s.maxChunkSize,
      maxBundleSize: s.maxBundleSize,
      maxMemoryMb: s.maxMemoryMb,
      warmupRequests: s.warmupRequests,
    },
    maxRequests: s.maxRequests,
    log: logTarget(core, o),
  };
}
