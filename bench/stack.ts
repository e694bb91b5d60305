/**
 * The bus under test, all on loopback: a private XMPP server (ejabberd by default, c2s
 * shaper off as the test harness configures it), our router, and `osrf-prefork serve`
 * processes started from a settings file, as an operator would start them.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { TEST_USERS, writeCoreConfig } from "../devkit/osrf-config.ts";
import { CliProcess } from "../devkit/processes.ts";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../devkit/xmpp-server.ts";
import { COMPILE_FLAGS } from "../scripts/compile-flags.ts";
import { Client } from "../src/client/client.ts";
import { readCoreConfig } from "../src/config/core.ts";
import type { CoreConfig } from "../src/config/types.ts";
import { connectBus } from "../src/connect/bus.ts";
import { createLogger } from "../src/log/logger.ts";
import { makeResource } from "../src/protocol/ids.ts";

export const ROOT = resolve(import.meta.dir, "..");
/** Host name of the settings section and the XMPP resources. */
export const BENCH_HOST = "benchhost";

/** A running bus without services. */
export interface Stack {
  xmpp: XmppServer;
  dir: string;
  coreFile: string;
  core: CoreConfig;
  router: CliProcess;
  /** The caller: one connection, as one client process. */
  client: Client;
  /** Extra environment for the processes started from here (profiling). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** A service to serve and its pool. */
export interface ServeSpec {
  service: string;
  /** Path relative to the repository. */
  app: string;
  /** min_children = max_children: the whole pool starts up front. */
  drones: number;
}

/** Processes started here and still running: killed if the bench itself is stopped or fails. */
const children = new Set<CliProcess>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const killAll = (): void => {
    for (const c of children) c.proc.kill("SIGKILL");
  };
  process.on("exit", killAll);
  // Registered before the test harness's handlers, which stop the XMPP server and re-raise.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, killAll);
}

function track(p: CliProcess): CliProcess {
  children.add(p);
  void p.proc.exited.then(() => children.delete(p));
  return p;
}

/** Starts the XMPP server, the router and the caller's connection. */
export async function startStack(kind: XmppServerKind, env: Record<string, string> = {}): Promise<Stack> {
  installCleanup();
  const xmpp = await startXmppServer({ kind, users: TEST_USERS });
  const dir = mkdtempSync(join(tmpdir(), "osrf-bench-"));
  // OpenSRF's default level (3: info and activity lines) to a file, as installs run.
  const coreFile = writeCoreConfig(xmpp, { logfile: join(dir, "osrfsys.log"), loglevel: 3 });
  const core = readCoreConfig(coreFile);
  const router = track(CliProcess.start(["router", "--config", coreFile], { env }));
  let client: Client | undefined;
  try {
    client = await connectCaller(core, dir);
    // The router logs to the file, so ask it instead of reading its output.
    const why = () => `${router.output.slice(-1500)}${logTail(join(dir, "osrfsys.log"))}`;
    const exited = router.proc.exited.then((code) => {
      throw new Error(`the router exited with ${code}: ${why()}`);
    });
    exited.catch(() => {});
    const listed = async () =>
      Array.isArray(
        await client!
          .request("router", "opensrf.router.info.class.list", [], { timeout: 2 })
          .first()
          .catch(() => undefined),
      );
    await Promise.race([
      exited,
      waitFor("the router", listed).catch((e: Error) => {
        throw new Error(`${e.message}: ${why()}`);
      }),
    ]);
  } catch (e) {
    await router.stop("SIGKILL").catch(() => {});
    await xmpp.stop().catch(() => {});
    throw e;
  }
  const stack: Stack = {
    xmpp,
    dir,
    coreFile,
    core,
    router,
    client,
    env,
    async stop() {
      await client?.close().catch(() => {});
      await router.stop("SIGTERM", 5_000).catch(() => {});
      await xmpp.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      rmSync(dirname(coreFile), { recursive: true, force: true });
    },
  };
  return stack;
}

/**
 * The caller: one bus connection (the bus `core.opensrf.bus` names) and one {@link Client} on
 * it (one client process), logging warnings to `dir`/caller.log; `timeoutS` bounds the wait
 * for each reply.
 */
export async function connectCaller(core: CoreConfig, dir: string, timeoutS = 30): Promise<Client> {
  const logger = createLogger({ service: "bench", logfile: join(dir, "caller.log"), loglevel: 2 });
  const conn = await connectBus(core.opensrf, { resource: makeResource("", BENCH_HOST), logger, reconnect: false });
  return new Client({
    transport: conn,
    routerName: core.opensrf.routerName,
    logger,
    timeout: timeoutS,
    ownTransport: true,
  });
}

/**
 * Compiles src/cli.ts into one binary in a temp dir (router, listener and self-spawned drones,
 * as deployed) and points OSRF_PREFORK_BIN at it, so processes started from here run it.
 * Returns the binary and a function removing it.
 */
export function compileBinary(): { bin: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "osrf-bench-bin-"));
  const bin = join(dir, "osrf-prefork");
  execFileSync(process.execPath, ["build", "--compile", ...COMPILE_FLAGS, "src/cli.ts", "--outfile", bin], {
    cwd: ROOT,
    stdio: "ignore",
  });
  process.env.OSRF_PREFORK_BIN = bin;
  return { bin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** opensrf.xml for `specs`, each with its pool fixed at `drones`. */
export function settingsXml(specs: ServeSpec[]): string {
  const app = (s: ServeSpec) => `
      <${s.service}>
        <keepalive>5</keepalive>
        <language>typescript</language>
        <unix_config>
          <max_requests>1000000</max_requests>
          <max_requests_jitter>0</max_requests_jitter>
          <min_children>${s.drones}</min_children>
          <max_children>${s.drones}</max_children>
          <max_backlog_queue>100000</max_backlog_queue>
        </unix_config>
      </${s.service}>`;
  return `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <apps>${specs.map(app).join("")}
    </apps>
  </default>
  <hosts>
    <${BENCH_HOST}><activeapps>${specs.map((s) => `<appname>${s.service}</appname>`).join("")}</activeapps></${BENCH_HOST}>
  </hosts>
</opensrf>
`;
}

/** A running `osrf-prefork serve`. */
export interface Served {
  spec: ServeSpec;
  proc: CliProcess;
  stop(): Promise<void>;
}

/** Starts `serve` for one service and waits until the router lists it. */
export async function startServe(stack: Stack, spec: ServeSpec): Promise<Served> {
  const settings = join(stack.dir, `opensrf-${spec.service}-${spec.drones}.xml`);
  writeFileSync(settings, settingsXml([spec]));
  const proc = track(
    CliProcess.start(
      [
        "serve",
        "--service",
        spec.service,
        "--app",
        join(ROOT, spec.app),
        "--config",
        stack.coreFile,
        "--settings",
        settings,
        "--host",
        BENCH_HOST,
      ],
      { env: stack.env },
    ),
  );
  const exited = proc.proc.exited.then((code) => {
    throw new Error(`serve ${spec.service} exited with ${code}: ${proc.output.slice(-2000)}`);
  });
  await Promise.race([
    exited,
    waitFor(`${spec.service} to register`, async () => {
      const classes = (await stack.client
        .request("router", "opensrf.router.info.class.list")
        .first()
        .catch(() => [])) as string[];
      return classes.includes(spec.service);
    }),
  ]);
  exited.catch(() => {});
  return {
    spec,
    proc,
    async stop() {
      await proc.stop("SIGTERM", 15_000);
      // The router drops the class once the listener unregistered.
      await waitFor(`${spec.service} to unregister`, async () => {
        const classes = (await stack.client
          .request("router", "opensrf.router.info.class.list")
          .first()
          .catch(() => [])) as string[];
        return !classes.includes(spec.service);
      }).catch(() => {});
    },
  };
}

function logTail(file: string): string {
  try {
    return `\n${file}:\n${readFileSync(file, "utf8").split("\n").slice(-20).join("\n")}`;
  } catch {
    return "";
  }
}

/** Polls `cond` every 50 ms for up to `timeoutMs`. */
export async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}
